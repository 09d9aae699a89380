/* Docker's json-file log driver, byte for byte: one JSON object per line of
 * output, `{"log":"…","stream":"stdout","time":"<RFC3339Nano, UTC>"}`.
 * The escaping follows moby's jsonlog writer (HTML-safe, invalid UTF-8 as
 * U+FFFD); lines longer than 16 KiB are split as Docker's copier does. */
#include "mc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MC_LOG_MAX_LINE (16 * 1024)

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

static int
write_all (int fd, const char *buf, size_t len, struct mc_error *err)
{
  while (len > 0)
    {
      ssize_t n = write (fd, buf, len);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        return mc_error_set (err, errno, "write log");
      buf += n;
      len -= (size_t) n;
    }
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
  return write_all (log_fd, entry, n, err);
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

  if (pending_reserve (s, len, err) < 0)
    return -1;
  memcpy (s->pending + s->len, buf, len);
  s->len += len;
  for (size_t i = 0; i < s->len; i++)
    {
      bool newline = s->pending[i] == '\n';
      if (!newline && i + 1 - start < MC_LOG_MAX_LINE)
        continue;
      if (write_entry (log_fd, s->name, s->pending + start, i + 1 - start, err) < 0)
        return -1;
      start = i + 1;
    }
  memmove (s->pending, s->pending + start, s->len - start);
  s->len -= start;
  return 0;
}

int
mc_log_flush (int log_fd, struct mc_log_stream *s, struct mc_error *err)
{
  int ret = 0;

  if (s->len > 0)
    ret = write_entry (log_fd, s->name, s->pending, s->len, err);
  free (s->pending);
  s->pending = NULL;
  s->len = s->cap = 0;
  return ret;
}
