/* Docker's json-file log driver, byte for byte: one JSON object per line of
 * output, `{"log":"…","stream":"stdout","time":"<RFC3339Nano, UTC>"}`.
 * The escaping follows moby's jsonlog writer (HTML-safe, invalid UTF-8 as
 * U+FFFD); lines longer than 16 KiB are split as Docker's copier does. */
#include "mc.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MC_LOG_MAX_LINE (16 * 1024)

/* The log file a monitor writes and its rotation.  One per process: a monitor
 * writes one log, and keeping the state here lets every writer (the output
 * pipes, a pty) share it through nothing more than the fd, which rotation
 * keeps (the new file is dup'ed onto it). */
static struct
{
  int fd;
  const char *path;
  unsigned long long size, max_size;
  unsigned long max_file;
  unsigned long long dropped; /* lines that could not be written (a full disk) */
} log_file = { .fd = -1 };

/* Length of a valid UTF-8 sequence at P (at most N bytes), or 0. */
static size_t
utf8_sequence (const unsigned char *p, size_t n)
{
  size_t len;
  unsigned char lo = 0x80, hi = 0xbf;

  if (p[0] >= 0xc2 && p[0] <= 0xdf)
    len = 2;
  else if (p[0] >= 0xe0 && p[0] <= 0xef)
    len = 3;
  else if (p[0] >= 0xf0 && p[0] <= 0xf4)
    len = 4;
  else
    return 0;
  if (p[0] == 0xe0)
    lo = 0xa0; /* overlong */
  else if (p[0] == 0xed)
    hi = 0x9f; /* surrogates */
  else if (p[0] == 0xf0)
    lo = 0x90; /* overlong */
  else if (p[0] == 0xf4)
    hi = 0x8f; /* above U+10FFFF */
  if (n < len || p[1] < lo || p[1] > hi)
    return 0;
  for (size_t i = 2; i < len; i++)
    if (p[i] < 0x80 || p[i] > 0xbf)
      return 0;
  return len;
}

/* Escape LEN bytes of IN into OUT (room for 6 * LEN), returning the length. */
static size_t
json_escape (char *out, const unsigned char *in, size_t len)
{
  static const char hex[] = "0123456789abcdef";
  size_t o = 0;

  for (size_t i = 0; i < len;)
    {
      unsigned char c = in[i];
      if (c >= 0x80)
        {
          size_t n = utf8_sequence (in + i, len - i);
          if (n == 0)
            o += (size_t) sprintf (out + o, "\\ufffd"), i++;
          else if (n == 3 && c == 0xe2 && in[i + 1] == 0x80 && (in[i + 2] & 0xfe) == 0xa8)
            o += (size_t) sprintf (out + o, "\\u202%c", in[i + 2] == 0xa8 ? '8' : '9'), i += 3;
          else
            memcpy (out + o, in + i, n), o += n, i += n;
          continue;
        }
      i++;
      if (c == '"' || c == '\\')
        out[o++] = '\\', out[o++] = (char) c;
      else if (c == '\n')
        out[o++] = '\\', out[o++] = 'n';
      else if (c == '\r')
        out[o++] = '\\', out[o++] = 'r';
      else if (c == '\t')
        out[o++] = '\\', out[o++] = 't';
      else if (c < 0x20 || c == '<' || c == '>' || c == '&')
        o += (size_t) sprintf (out + o, "\\u00%c%c", hex[c >> 4], hex[c & 0xf]);
      else
        out[o++] = (char) c;
    }
  return o;
}

/* Go's time.RFC3339Nano: trailing zeros of the fraction are dropped. */
static size_t
format_time (char *out, size_t size)
{
  struct timespec ts;
  struct tm tm;
  size_t n;

  clock_gettime (CLOCK_REALTIME, &ts);
  gmtime_r (&ts.tv_sec, &tm);
  n = strftime (out, size, "%Y-%m-%dT%H:%M:%S", &tm);
  if (ts.tv_nsec != 0)
    {
      n += (size_t) snprintf (out + n, size - n, ".%09ld", ts.tv_nsec);
      while (out[n - 1] == '0')
        n--;
    }
  n += (size_t) snprintf (out + n, size - n, "Z");
  return n;
}

/* Write LEN bytes or none: a write that failed halfway (ENOSPC with a few
 * bytes free) is cut off again, so that the log never holds half a line. */
static int
write_all (int fd, const char *buf, size_t len, struct mc_error *err)
{
  size_t written = 0;

  while (written < len)
    {
      ssize_t n = write (fd, buf + written, len - written);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        {
          int saved = errno;
          off_t end = lseek (fd, 0, SEEK_END);
          if (written > 0 && end >= (off_t) written && ftruncate (fd, end - (off_t) written) < 0)
            saved = errno;
          return mc_error_set (err, saved, "write log `%s`", log_file.path ? log_file.path : "");
        }
      written += (size_t) n;
    }
  return 0;
}

int
mc_log_open (const struct mc_config *cfg, struct mc_error *err)
{
  struct stat st;
  int fd = open (cfg->log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);

  if (fd < 0)
    return mc_error_set (err, errno, "open `%s`", cfg->log_path);
  if (fstat (fd, &st) < 0)
    {
      mc_error_set (err, errno, "fstat `%s`", cfg->log_path);
      close (fd);
      return -1;
    }
  log_file.fd = fd;
  log_file.path = cfg->log_path;
  log_file.size = (unsigned long long) st.st_size; /* a restarted container appends */
  log_file.max_size = cfg->log_max_size;
  log_file.max_file = cfg->log_max_file ? cfg->log_max_file : 1;
  return fd;
}

static int
rename_numbered (unsigned long from, unsigned long to, struct mc_error *err)
{
  char old_path[PATH_MAX], new_path[PATH_MAX];

  if (from == 0)
    snprintf (old_path, sizeof old_path, "%s", log_file.path);
  else
    snprintf (old_path, sizeof old_path, "%s.%lu", log_file.path, from);
  if (snprintf (new_path, sizeof new_path, "%s.%lu", log_file.path, to) >= (int) sizeof new_path)
    return mc_error_set (err, ENAMETOOLONG, "rename `%s`", old_path);
  if (rename (old_path, new_path) < 0 && errno != ENOENT)
    return mc_error_set (err, errno, "rename `%s`", old_path);
  return 0;
}

/* Docker's rotation: <log>.{k} -> <log>.{k+1} from the oldest kept down, the
 * live log -> <log>.1 (what falls off the end is replaced), then a new live
 * log on the same fd, so that readers following by name see the new file. */
static int
log_rotate (struct mc_error *err)
{
  if (log_file.max_file <= 1)
    {
      if (ftruncate (log_file.fd, 0) < 0)
        return mc_error_set (err, errno, "truncate `%s`", log_file.path);
      log_file.size = 0;
      return 0;
    }
  for (unsigned long k = log_file.max_file - 2; k >= 1; k--)
    if (rename_numbered (k, k + 1, err) < 0)
      return -1;
  if (rename_numbered (0, 1, err) < 0)
    return -1;
  cleanup_fd int fd = open (log_file.path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
  if (fd < 0)
    return mc_error_set (err, errno, "open `%s`", log_file.path);
  if (dup3 (fd, log_file.fd, O_CLOEXEC) < 0)
    return mc_error_set (err, errno, "dup3 `%s`", log_file.path);
  log_file.size = 0;
  return 0;
}

/* Make room for LEN more bytes on LOG_FD: rotate first when they would take
 * the log past its max size (a line longer than that gets a file of its own). */
static int
log_reserve (int log_fd, size_t len, struct mc_error *err)
{
  if (log_fd < 0 || log_fd != log_file.fd)
    return 0;
  if (log_file.max_size > 0 && log_file.size > 0 && log_file.size + len > log_file.max_size
      && log_rotate (err) < 0)
    return -1;
  log_file.size += len;
  return 0;
}

static int
write_entry (int log_fd, const char *stream, const char *line, size_t len,
             struct mc_error *err)
{
  char when[64];
  size_t size = len * 6 + 128, n;
  cleanup_free char *entry = malloc (size);

  if (entry == NULL)
    return mc_error_set (err, ENOMEM, "log entry");
  n = (size_t) sprintf (entry, "{\"log\":\"");
  n += json_escape (entry + n, (const unsigned char *) line, len);
  format_time (when, sizeof when);
  n += (size_t) sprintf (entry + n, "\",\"stream\":\"%s\",\"time\":\"%s\"}\n", stream, when);
  if (log_reserve (log_fd, n, err) < 0 || write_all (log_fd, entry, n, err) < 0)
    {
      if (log_fd == log_file.fd)
        log_file.size -= log_file.size >= n ? n : log_file.size;
      log_file.dropped++;
      return -1;
    }
  return 0;
}

static int
pending_reserve (struct mc_log_stream *s, size_t more, struct mc_error *err)
{
  if (s->len + more <= s->cap)
    return 0;
  size_t cap = s->cap ? s->cap : 4096;
  while (cap < s->len + more)
    cap *= 2;
  char *grown = realloc (s->pending, cap);
  if (grown == NULL)
    return mc_error_set (err, ENOMEM, "log buffer");
  s->pending = grown;
  s->cap = cap;
  return 0;
}

int
mc_log_write (int log_fd, struct mc_log_stream *s, const char *buf, size_t len,
              struct mc_error *err)
{
  size_t start = 0;
  int ret = 0;

  if (log_fd < 0)
    return 0; /* no log: an exec's output is not the container's log */
  if (pending_reserve (s, len, err) < 0)
    return -1;
  memcpy (s->pending + s->len, buf, len);
  s->len += len;
  for (size_t i = 0; i < s->len; i++)
    {
      bool newline = s->pending[i] == '\n';
      if (!newline && i + 1 - start < MC_LOG_MAX_LINE)
        continue;
      /* A line that cannot be written is dropped (and counted), as Docker's json-file
       * driver drops it: kept, it would grow the monitor by every byte the container
       * writes while the disk is full.  The disk that refused one line is not asked
       * again for each of the others read with it. */
      if (ret == 0)
        ret = write_entry (log_fd, s->name, s->pending + start, i + 1 - start, err);
      else
        log_file.dropped++;
      start = i + 1;
    }
  memmove (s->pending, s->pending + start, s->len - start);
  s->len -= start;
  return ret;
}

unsigned long long
mc_log_dropped (void)
{
  return log_file.dropped;
}

int
mc_log_flush (int log_fd, struct mc_log_stream *s, struct mc_error *err)
{
  int ret = 0;

  if (s->len > 0 && log_fd >= 0)
    ret = write_entry (log_fd, s->name, s->pending, s->len, err);
  free (s->pending);
  s->pending = NULL;
  s->len = s->cap = 0;
  return ret;
}
