/* minictr-monitor: one per container, conmon's role (docs/internals.md).
 *
 * The parent of the container's init, double-forked away from the daemon.
 * It owns the container's stdio pipes, writes the json-file log, serves the
 * attach socket and records the exit status.  One thread, one poll loop:
 * a signalfd for SIGCHLD, the sync socket, the pipes, the attach socket and
 * its clients.
 */
#include "mc.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SYNC_FD 3
/* A client this far behind is dropped: it must not grow the monitor without bound. */
#define CLIENT_MAX_BUFFERED (16 * 1024 * 1024)
/* While a running container's attached client is this far behind, its output waits (the
 * container's writes block): a reader that a busy machine slows loses nothing.  A client that
 * takes nothing for CLIENT_STALL_NS meanwhile is dropped, so that one that stopped reading
 * holds the container and the other clients only that long. */
#define OUTPUT_HIGH_WATER (4 * 1024 * 1024)
#define CLIENT_STALL_NS (1000LL * 1000000LL)
#define HELD_POLL_MS 100

enum attach_mask
{
  ATTACH_STDIN = 1,
  ATTACH_STDOUT = 2,
  ATTACH_STDERR = 4,
  ATTACH_CONTROL = 8, /* no output; text lines such as `resize <rows> <cols>` */
};

struct client
{
  int fd;
  int mask; /* -1 until the client's first byte arrived */
  bool read_eof;
  char ctl[128]; /* a control client's unfinished line */
  size_t ctl_len;
  char *out;
  size_t out_len, out_cap;
  long long progress_ns; /* when it last took bytes (or connected) */
};

struct monitor
{
  struct mc_config cfg;
  struct mc_container ctr;
  int sync_fd, sig_fd, listen_fd, log_fd;
  int out_fd, err_fd, in_fd; /* our ends of the container's stdio; -1 when closed */
  int pty_fd;                /* with a tty: the master (out_fd and in_fd are dups of it) */
  struct mc_log_stream log_out, log_err;
  char sync_line[64];
  size_t sync_len;
  char stdin_buf[65536];
  size_t stdin_len, stdin_off;
  bool stdin_eof; /* close the container's stdin once the buffer is written */
  bool exited;
  int exit_code;
  long long finished_ns;
  struct client *clients;
  size_t n_clients;
};

/* ---- the sync socket to the daemon ---- */

static void
sync_write (struct monitor *m, const char *fmt, ...)
{
  char line[1024];
  va_list ap;
  int n;

  if (m->sync_fd < 0)
    return;
  va_start (ap, fmt);
  n = vsnprintf (line, sizeof line - 1, fmt, ap);
  va_end (ap);
  if (n < 0 || n > (int) sizeof line - 2)
    n = (int) sizeof line - 2;
  for (int i = 0; i < n; i++)
    if (line[i] == '\n')
      line[i] = ' '; /* one message, one line */
  line[n++] = '\n';
  /* The daemon may be gone; nothing to do about it then. */
  if (write (m->sync_fd, line, (size_t) n) < 0)
    return;
}

static void
sync_error (struct monitor *m, const struct mc_error *err)
{
  sync_write (m, "error %d %s", err->errnum, err->msg);
}

static void
sync_close (struct monitor *m)
{
  if (m->sync_fd >= 0)
    close (m->sync_fd);
  m->sync_fd = -1;
}

/* ---- attach clients ---- */

static int
set_nonblock (int fd, struct mc_error *err)
{
  int flags = fcntl (fd, F_GETFL);

  if (flags < 0 || fcntl (fd, F_SETFL, flags | O_NONBLOCK) < 0)
    return mc_error_set (err, errno, "fcntl O_NONBLOCK fd %d", fd);
  return 0;
}

static long long now_ns (void);

static void
client_drop (struct monitor *m, size_t i)
{
  shutdown (m->clients[i].fd, SHUT_RDWR);
  close (m->clients[i].fd);
  free (m->clients[i].out);
  m->clients[i] = m->clients[--m->n_clients];
}

/* Write what is buffered without blocking; -1 if the client must go. */
static int
client_flush (struct client *c)
{
  while (c->out_len > 0)
    {
      ssize_t n = send (c->fd, c->out, c->out_len, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        return errno == EAGAIN ? 0 : -1;
      memmove (c->out, c->out + n, c->out_len - (size_t) n);
      c->out_len -= (size_t) n;
      c->progress_ns = now_ns ();
    }
  return 0;
}

/* Queue HDR (may be empty) and BUF for C and send what the socket takes now. */
static int
client_queue (struct client *c, const void *hdr, size_t hdr_len, const char *buf, size_t len)
{
  size_t need = c->out_len + hdr_len + len;

  if (need > CLIENT_MAX_BUFFERED)
    return -1;
  if (need > c->out_cap)
    {
      size_t cap = c->out_cap ? c->out_cap : 8192;
      while (cap < need)
        cap *= 2;
      char *grown = realloc (c->out, cap);
      if (grown == NULL)
        return -1;
      c->out = grown;
      c->out_cap = cap;
    }
  if (hdr_len > 0)
    memcpy (c->out + c->out_len, hdr, hdr_len);
  memcpy (c->out + c->out_len + hdr_len, buf, len);
  c->out_len = need;
  return client_flush (c);
}

/* Docker's multiplexed frame: [stream, 0, 0, 0, big-endian length] payload;
 * with a tty, the raw bytes (one stream, as in Docker). */
static int
client_queue_output (const struct monitor *m, struct client *c, int stream, const char *buf,
                     size_t len)
{
  unsigned char hdr[8] = { (unsigned char) stream, 0, 0, 0, (unsigned char) (len >> 24),
                           (unsigned char) (len >> 16), (unsigned char) (len >> 8),
                           (unsigned char) len };

  return client_queue (c, hdr, m->cfg.tty ? 0 : sizeof hdr, buf, len);
}

static void
broadcast (struct monitor *m, int stream, const char *buf, size_t len)
{
  int want = stream == 1 ? ATTACH_STDOUT : ATTACH_STDERR;

  for (size_t i = 0; i < m->n_clients;)
    {
      struct client *c = &m->clients[i];
      if (c->mask > 0 && !(c->mask & ATTACH_CONTROL) && (c->mask & want)
          && client_queue_output (m, c, stream, buf, len) < 0)
        client_drop (m, i);
      else
        i++;
    }
}

static void
client_accept (struct monitor *m)
{
  int fd = accept4 (m->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
  struct client *grown;

  if (fd < 0)
    return; /* EAGAIN, or a client that already went away */
  grown = realloc (m->clients, (m->n_clients + 1) * sizeof *grown);
  if (grown == NULL)
    {
      close (fd);
      return;
    }
  m->clients = grown;
  m->clients[m->n_clients++] = (struct client) { .fd = fd, .mask = -1, .progress_ns = now_ns () };
}

static void
stdin_close (struct monitor *m)
{
  if (m->in_fd >= 0)
    close (m->in_fd);
  m->in_fd = -1;
  m->stdin_len = m->stdin_off = 0;
}

/* One line of a control client, answered `ok` or `error <errno> <message>`. */
static void
control_command (struct monitor *m, struct client *c, const char *line)
{
  struct mc_error err = { 0 };
  unsigned int rows, cols;
  char reply[sizeof err.msg + 32];
  int ret = 0, len;

  if (sscanf (line, "resize %u %u", &rows, &cols) == 2)
    /* Without a tty there is nothing to resize; Docker's clients do not mind. */
    ret = m->pty_fd >= 0 ? mc_pty_resize (m->pty_fd, rows, cols, &err) : 0;
  else
    ret = mc_error_set (&err, EINVAL, "control: unknown command `%.64s`", line);
  len = ret == 0 ? snprintf (reply, sizeof reply, "ok\n")
                 : snprintf (reply, sizeof reply, "error %d %s\n", err.errnum, err.msg);
  /* A client that cannot take the answer is dropped by its next read. */
  client_queue (c, NULL, 0, reply, (size_t) len);
}

static void
control_read (struct monitor *m, size_t i)
{
  struct client *c = &m->clients[i];
  ssize_t n = recv (c->fd, c->ctl + c->ctl_len, sizeof c->ctl - 1 - c->ctl_len, MSG_DONTWAIT);
  char *nl;

  if (n < 0 && (errno == EAGAIN || errno == EINTR))
    return;
  if (n <= 0)
    {
      client_drop (m, i);
      return;
    }
  c->ctl_len += (size_t) n;
  while ((nl = memchr (c->ctl, '\n', c->ctl_len)) != NULL)
    {
      size_t used = (size_t) (nl + 1 - c->ctl);
      *nl = '\0';
      control_command (m, c, c->ctl);
      memmove (c->ctl, nl + 1, c->ctl_len - used);
      c->ctl_len -= used;
    }
  if (c->ctl_len == sizeof c->ctl - 1)
    client_drop (m, i); /* no command is that long */
}

/* Read from a client: its mask byte first, then stdin bytes (or nothing), or
 * a control client's lines.  HANGUP: poll said POLLHUP (the peer closed both
 * directions), which EOF alone does not tell from a half-close. */
static void
client_read (struct monitor *m, size_t i, bool hangup)
{
  struct client *c = &m->clients[i];

  if (c->mask > 0 && (c->mask & ATTACH_CONTROL))
    {
      control_read (m, i);
      return;
    }
  bool wants_stdin = c->mask > 0 && (c->mask & ATTACH_STDIN) && m->in_fd >= 0;
  char discard[4096];

  if (wants_stdin && m->stdin_len > 0)
    return; /* the last bytes are still on their way: read these later */
  char *buf = wants_stdin ? m->stdin_buf : discard;
  size_t size = c->mask < 0 ? 1 : wants_stdin ? sizeof m->stdin_buf : sizeof discard;
  ssize_t n = recv (c->fd, buf, size, MSG_DONTWAIT);

  if (n < 0 && (errno == EAGAIN || errno == EINTR))
    return;
  if (n < 0 || (n == 0 && c->mask < 0))
    {
      client_drop (m, i);
      return;
    }
  if (n == 0 && hangup)
    {
      /* Gone altogether (closed, or its daemon was killed): the container's
       * stdin stays open for whoever attaches next (live restore). */
      client_drop (m, i);
      return;
    }
  if (n == 0)
    {
      /* Half-closed (shutdown SHUT_WR): StdinOnce, the container's stdin ends
       * with it.  Not a pty's: every client shares it, as in Docker. */
      c->read_eof = true;
      if ((c->mask & ATTACH_STDIN) && !m->cfg.tty)
        m->stdin_eof = true;
      if (m->stdin_len == 0 && m->stdin_eof)
        stdin_close (m);
      return;
    }
  if (c->mask < 0)
    c->mask = (unsigned char) buf[0];
  else if (wants_stdin)
    {
      m->stdin_len = (size_t) n;
      m->stdin_off = 0;
    }
}

static void
stdin_write (struct monitor *m)
{
  ssize_t n = write (m->in_fd, m->stdin_buf + m->stdin_off, m->stdin_len - m->stdin_off);

  if (n < 0 && (errno == EAGAIN || errno == EINTR))
    return;
  if (n < 0)
    {
      stdin_close (m); /* EPIPE: the container closed its stdin */
      return;
    }
  m->stdin_off += (size_t) n;
  if (m->stdin_off == m->stdin_len)
    m->stdin_len = m->stdin_off = 0;
  if (m->stdin_len == 0 && m->stdin_eof)
    stdin_close (m);
}

/* Before `start`, take every client already queued on the attach socket and
 * the mask byte of every client that has not sent one yet (the poll loop may
 * have accepted one already), so that none misses the first bytes of output. */
static void
accept_queued_clients (struct monitor *m)
{
  for (;;)
    {
      struct pollfd p = { .fd = m->listen_fd, .events = POLLIN };
      if (poll (&p, 1, 0) <= 0)
        break;
      client_accept (m);
    }
  for (size_t i = 0; i < m->n_clients; i++)
    {
      struct pollfd p = { .fd = m->clients[i].fd, .events = POLLIN };
      if (m->clients[i].mask < 0 && poll (&p, 1, 1000) > 0)
        client_read (m, i, false);
    }
}

/* ---- output pipes ---- */

static void
pipe_read (struct monitor *m, int *fd, int stream)
{
  struct mc_log_stream *log = stream == 1 ? &m->log_out : &m->log_err;
  char buf[65536];
  struct mc_error err;
  ssize_t n = read (*fd, buf, sizeof buf);

  if (n < 0 && (errno == EAGAIN || errno == EINTR))
    return;
  if (n <= 0)
    {
      close (*fd);
      *fd = -1;
      return;
    }
  /* A full disk must not stop the container nor its attach clients: the log drops
   * (and counts, for the exit file) the lines it cannot write. */
  mc_log_write (m->log_fd, log, buf, (size_t) n, &err);
  broadcast (m, stream, buf, (size_t) n);
}

/* ---- the container's life ---- */

static long long
now_ns (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_REALTIME, &ts);
  return (long long) ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void
record_exit (struct monitor *m, int status)
{
  m->exited = true;
  m->finished_ns = now_ns ();
  m->exit_code = WIFSIGNALED (status) ? 128 + WTERMSIG (status) : WEXITSTATUS (status);
}

static void
reap_children (struct monitor *m)
{
  struct signalfd_siginfo si;
  int status;
  pid_t pid;

  while (read (m->sig_fd, &si, sizeof si) == sizeof si)
    ;
  while ((pid = waitpid (-1, &status, WNOHANG)) > 0)
    if (pid == m->ctr.pid)
      record_exit (m, status);
}

static void
kill_container (struct monitor *m)
{
  int status;

  if (m->ctr.pid > 0 && !m->exited)
    {
      kill (m->ctr.pid, SIGKILL);
      while (waitpid (m->ctr.pid, &status, 0) < 0)
        if (errno != EINTR)
          return;
      record_exit (m, status);
    }
}

static void
release_container (struct monitor *m)
{
  struct mc_error err;

  accept_queued_clients (m);
  if (mc_container_release (&m->ctr, &err) == 0)
    sync_write (m, "started");
  else
    sync_error (m, &err);
  sync_close (m);
}

/* Read from the daemon: `start`, or EOF meaning "never mind". */
static void
sync_read (struct monitor *m)
{
  ssize_t n = read (m->sync_fd, m->sync_line + m->sync_len,
                    sizeof m->sync_line - 1 - m->sync_len);

  if (n < 0 && (errno == EAGAIN || errno == EINTR))
    return;
  if (n <= 0)
    {
      kill_container (m);
      unlink (m->cfg.attach_path);
      _exit (0);
    }
  m->sync_len += (size_t) n;
  m->sync_line[m->sync_len] = '\0';
  if (strchr (m->sync_line, '\n') == NULL && m->sync_len < sizeof m->sync_line - 1)
    return;
  if (strcmp (m->sync_line, "start\n") == 0)
    {
      release_container (m);
      return;
    }
  struct mc_error err;
  mc_error_set (&err, EPROTO, "sync: unexpected `%.*s`", (int) strcspn (m->sync_line, "\n"),
                m->sync_line);
  sync_error (m, &err);
  kill_container (m);
  unlink (m->cfg.attach_path);
  _exit (1);
}

/* ---- the poll loop ---- */

enum
{
  SLOT_SIGNAL,
  SLOT_SYNC,
  SLOT_LISTEN,
  SLOT_STDOUT,
  SLOT_STDERR,
  SLOT_STDIN,
  SLOT_CLIENTS, /* clients from here on */
};

static short
client_events (const struct monitor *m, const struct client *c)
{
  short ev = c->out_len > 0 ? POLLOUT : 0;
  /* Backpressure: no stdin bytes are read while the last ones wait. */
  bool reading = c->mask < 0 || (c->mask & ATTACH_CONTROL) || !(c->mask & ATTACH_STDIN)
                 || m->stdin_len == 0;

  if (!c->read_eof && reading)
    ev |= POLLIN;
  return ev;
}

/* Whether the container's output waits for an attached client that is far behind. */
static bool
output_held (const struct monitor *m)
{
  if (m->exited)
    return false; /* what is left in the pipes is read to the end, as before */
  for (size_t i = 0; i < m->n_clients; i++)
    if (m->clients[i].out_len > OUTPUT_HIGH_WATER)
      return true;
  return false;
}

static void
drop_stalled_clients (struct monitor *m)
{
  long long now = now_ns ();

  for (size_t i = m->n_clients; i-- > 0;)
    if (m->clients[i].out_len > OUTPUT_HIGH_WATER && now - m->clients[i].progress_ns > CLIENT_STALL_NS)
      client_drop (m, i);
}

static size_t
fill_pollfds (const struct monitor *m, struct pollfd *p, bool held)
{
  p[SLOT_SIGNAL] = (struct pollfd) { .fd = m->sig_fd, .events = POLLIN };
  p[SLOT_SYNC] = (struct pollfd) { .fd = m->sync_fd, .events = POLLIN };
  p[SLOT_LISTEN] = (struct pollfd) { .fd = m->listen_fd, .events = POLLIN };
  p[SLOT_STDOUT] = (struct pollfd) { .fd = held ? -1 : m->out_fd, .events = POLLIN };
  p[SLOT_STDERR] = (struct pollfd) { .fd = held ? -1 : m->err_fd, .events = POLLIN };
  p[SLOT_STDIN] = (struct pollfd) { .fd = m->stdin_len ? m->in_fd : -1, .events = POLLOUT };
  for (size_t i = 0; i < m->n_clients; i++)
    {
      short events = client_events (m, &m->clients[i]);
      /* With nothing to wait for, leave it out: a hung-up peer would spin. */
      p[SLOT_CLIENTS + i] = (struct pollfd) { .fd = events ? m->clients[i].fd : -1,
                                              .events = events };
    }
  return SLOT_CLIENTS + m->n_clients;
}

static void
handle_clients (struct monitor *m, const struct pollfd *p, size_t n)
{
  /* Walk backwards: dropping client i moves the last one into its slot. */
  for (size_t i = n; i-- > 0;)
    {
      if (p[i].revents == 0 || i >= m->n_clients || m->clients[i].fd != p[i].fd)
        continue;
      if (p[i].events & POLLIN && p[i].revents & (POLLIN | POLLHUP | POLLERR))
        client_read (m, i, p[i].revents & POLLHUP);
      else if (p[i].revents & (POLLOUT | POLLHUP | POLLERR)
               && client_flush (&m->clients[i]) < 0)
        client_drop (m, i);
    }
}

static int
monitor_poll_once (struct monitor *m)
{
  struct pollfd p[SLOT_CLIENTS + m->n_clients];
  bool held = output_held (m);
  size_t n = fill_pollfds (m, p, held);
  size_t n_clients = m->n_clients;
  /* Once init is gone the others in its PID namespace die with it and the
   * pipes reach EOF at once; the timeout only guards against the unforeseen. */
  int ret = poll (p, n, m->exited ? 2000 : held ? HELD_POLL_MS : -1);

  if (ret < 0 && errno == EINTR)
    return 0;
  if (ret == 0 && held)
    {
      drop_stalled_clients (m);
      return 0;
    }
  if (ret <= 0)
    {
      /* Cannot watch the container any more: end it rather than lose it. */
      kill_container (m);
      return -1;
    }
  if (p[SLOT_SIGNAL].revents)
    reap_children (m);
  if (p[SLOT_STDOUT].revents)
    pipe_read (m, &m->out_fd, 1);
  if (p[SLOT_STDERR].revents)
    pipe_read (m, &m->err_fd, 2);
  if (p[SLOT_STDIN].revents)
    stdin_write (m);
  handle_clients (m, p + SLOT_CLIENTS, n_clients);
  if (held)
    drop_stalled_clients (m);
  if (p[SLOT_LISTEN].revents)
    client_accept (m);
  if (p[SLOT_SYNC].revents)
    sync_read (m);
  return 0;
}

/* ---- the end ---- */

static int
write_exit_file (const struct monitor *m, struct mc_error *err)
{
  char tmp[PATH_MAX], line[64];
  int len = snprintf (line, sizeof line, "%d %lld %llu\n", m->exit_code, m->finished_ns,
                     mc_log_dropped ());

  if (snprintf (tmp, sizeof tmp, "%s.tmp", m->cfg.exit_path) >= (int) sizeof tmp)
    return mc_error_set (err, ENAMETOOLONG, "open `%s.tmp`", m->cfg.exit_path);
  cleanup_fd int fd = open (tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0)
    return mc_error_set (err, errno, "open `%s`", tmp);
  if (write (fd, line, (size_t) len) != len)
    return mc_error_set (err, errno, "write `%s`", tmp);
  if (rename (tmp, m->cfg.exit_path) < 0)
    return mc_error_set (err, errno, "rename `%s`", tmp);
  return 0;
}

/* Give each client up to a second to take what is still buffered for it. */
static void
close_clients (struct monitor *m)
{
  long long deadline = now_ns () + 1000000000LL;

  while (m->n_clients > 0)
    {
      struct client *c = &m->clients[m->n_clients - 1];
      struct pollfd p = { .fd = c->fd, .events = POLLOUT };
      while (c->out_len > 0 && now_ns () < deadline && poll (&p, 1, 100) >= 0)
        if (client_flush (c) < 0)
          break;
      client_drop (m, m->n_clients - 1);
    }
}

static bool
shares_host_pids (const struct mc_config *cfg)
{
  return cfg->exec_pid <= 0 && cfg->pidns != NULL && strcmp (cfg->pidns, "host") == 0;
}

/* What a PID namespace's end would have done: every process the container
 * left (reparented to us, its subreaper) killed and reaped, until none is
 * left, before the exit file says the container is gone. */
static void
kill_orphans (void)
{
  char path[64], children[4096];
  int status;

  for (int round = 0; round < 1000; round++)
    {
      ssize_t n = 0;
      snprintf (path, sizeof path, "/proc/self/task/%d/children", (int) getpid ());
      cleanup_fd int fd = open (path, O_RDONLY | O_CLOEXEC);
      if (fd >= 0)
        n = read (fd, children, sizeof children - 1);
      children[n > 0 ? n : 0] = '\0';
      for (char *p = children, *end; *p; p = end)
        {
          long pid = strtol (p, &end, 10);
          if (end == p)
            break;
          kill ((pid_t) pid, SIGKILL);
        }
      while (waitpid (-1, &status, WNOHANG) > 0)
        ;
      if (n <= 0 && waitpid (-1, &status, WNOHANG) < 0 && errno == ECHILD)
        return;
      if (n > 0)
        usleep (1000);
    }
}

__attribute__ ((noreturn)) static void
monitor_finish (struct monitor *m)
{
  struct mc_error err;

  if (shares_host_pids (&m->cfg))
    kill_orphans ();

  mc_log_flush (m->log_fd, &m->log_out, &err);
  mc_log_flush (m->log_fd, &m->log_err, &err);
  if (write_exit_file (m, &err) < 0)
    sync_error (m, &err);
  close_clients (m);
  unlink (m->cfg.attach_path);
  _exit (0);
}

/* ---- set-up ---- */

/* Bind through /proc/self/fd/N/NAME: sun_path holds 108 bytes, and a
 * rootless runtime dir plus a 64-hex id does not fit (conmon does the same). */
static int
listen_attach (struct monitor *m, struct mc_error *err)
{
  const char *path = m->cfg.attach_path, *slash = strrchr (path, '/');
  struct sockaddr_un addr = { .sun_family = AF_UNIX };
  char dir[PATH_MAX];

  if (slash == NULL || (size_t) (slash - path) >= sizeof dir)
    return mc_error_set (err, EINVAL, "attach socket `%s`: not an absolute path", path);
  snprintf (dir, sizeof dir, "%.*s", (int) (slash - path), path);
  cleanup_fd int dirfd = open (dir[0] ? dir : "/", O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (dirfd < 0)
    return mc_error_set (err, errno, "open `%s`", dir);
  if (unlinkat (dirfd, slash + 1, 0) < 0 && errno != ENOENT)
    return mc_error_set (err, errno, "unlink `%s`", path);
  if (snprintf (addr.sun_path, sizeof addr.sun_path, "/proc/self/fd/%d/%s", dirfd, slash + 1)
      >= (int) sizeof addr.sun_path)
    return mc_error_set (err, ENAMETOOLONG, "bind `%s`", path);
  m->listen_fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (m->listen_fd < 0)
    return mc_error_set (err, errno, "socket AF_UNIX");
  if (bind (m->listen_fd, (struct sockaddr *) &addr, sizeof addr) < 0)
    return mc_error_set (err, errno, "bind `%s`", path);
  if (fchmodat (dirfd, slash + 1, 0600, 0) < 0)
    return mc_error_set (err, errno, "chmod `%s`", path);
  if (listen (m->listen_fd, 128) < 0)
    return mc_error_set (err, errno, "listen `%s`", path);
  return 0;
}

static int
open_signalfd (struct monitor *m, struct mc_error *err)
{
  sigset_t set;

  sigemptyset (&set);
  sigaddset (&set, SIGCHLD);
  if (sigprocmask (SIG_BLOCK, &set, NULL) < 0)
    return mc_error_set (err, errno, "sigprocmask SIGCHLD");
  m->sig_fd = signalfd (-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
  if (m->sig_fd < 0)
    return mc_error_set (err, errno, "signalfd SIGCHLD");
  return 0;
}

/* Pipes for the container's stdio; CHILD gets the container's ends, which the
 * monitor closes once the container holds them. */
static int
open_stdio (struct monitor *m, struct mc_stdio *child, struct mc_error *err)
{
  int out[2], errp[2], in[2];

  if (m->cfg.tty)
    return 0; /* the process opens its pty itself: take_pty, once it is spawned */
  if (pipe2 (out, O_CLOEXEC) < 0 || pipe2 (errp, O_CLOEXEC) < 0)
    return mc_error_set (err, errno, "pipe2");
  m->out_fd = out[0], child->out = out[1];
  m->err_fd = errp[0], child->err = errp[1];
  if (m->cfg.stdin_pipe)
    {
      if (pipe2 (in, O_CLOEXEC) < 0)
        return mc_error_set (err, errno, "pipe2");
      child->in = in[0], m->in_fd = in[1];
      if (set_nonblock (m->in_fd, err) < 0)
        return -1;
    }
  else
    {
      child->in = open ("/dev/null", O_RDONLY | O_CLOEXEC);
      if (child->in < 0)
        return mc_error_set (err, errno, "open `/dev/null`");
    }
  if (set_nonblock (m->out_fd, err) < 0 || set_nonblock (m->err_fd, err) < 0)
    return -1;
  return 0;
}

/* With a tty, the master the process sent is its stdout (and stdin, when
 * the config says so): the same fd twice, dup'ed, so that each closes alone. */
static int
take_pty (struct monitor *m, struct mc_error *err)
{
  m->pty_fd = mc_steal_fd (&m->ctr.pty_master);
  if (m->pty_fd < 0)
    return mc_error_set (err, EPROTO, "tty: no pty master from the container");
  if (set_nonblock (m->pty_fd, err) < 0)
    return -1;
  if (m->cfg.tty_rows > 0 && m->cfg.tty_cols > 0
      && mc_pty_resize (m->pty_fd, m->cfg.tty_rows, m->cfg.tty_cols, err) < 0)
    return -1;
  m->out_fd = fcntl (m->pty_fd, F_DUPFD_CLOEXEC, 0);
  if (m->out_fd < 0)
    return mc_error_set (err, errno, "dup pty master");
  if (m->cfg.stdin_pipe)
    {
      m->in_fd = fcntl (m->pty_fd, F_DUPFD_CLOEXEC, 0);
      if (m->in_fd < 0)
        return mc_error_set (err, errno, "dup pty master");
    }
  return 0;
}

/* The init's namespaces exist: the daemon may set up its network while the init
 * sets up the rest (`cloned PID`, before `created`). */
static void
announce_cloned (pid_t pid, void *arg)
{
  sync_write (arg, "cloned %d", pid);
}

static int
monitor_setup (struct monitor *m, struct mc_error *err)
{
  struct mc_stdio child = { -1, -1, -1 };
  int ret;

  if (open_signalfd (m, err) < 0)
    return -1;
  if (m->cfg.log_path != NULL)
    {
      m->log_fd = mc_log_open (&m->cfg, err);
      if (m->log_fd < 0)
        return -1;
    }
  ret = open_stdio (m, &child, err);
  if (ret == 0 && m->cfg.exec_pid > 0)
    ret = mc_exec_spawn (&m->cfg, &child, &m->ctr, err);
  else if (ret == 0)
    {
      m->ctr.on_cloned = announce_cloned;
      m->ctr.on_cloned_arg = m;
      /* Without a PID namespace of its own (`pidns host`), the init's end
       * does not end its descendants: they come to us (kill_orphans). */
      if (shares_host_pids (&m->cfg) && prctl (PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0)
        ret = mc_error_set (err, errno, "prctl PR_SET_CHILD_SUBREAPER");
      if (ret == 0)
        ret = mc_container_spawn (&m->cfg, &child, &m->ctr, err);
    }
  for (int *fd = &child.in; fd <= &child.err; fd++)
    if (*fd >= 0)
      close (*fd);
  if (ret < 0)
    return -1;
  if (m->cfg.tty && take_pty (m, err) < 0)
    return -1;
  return listen_attach (m, err);
}

/* Detach from the daemon: fork, setsid, fork again, so that the monitor is
 * no child of the daemon and never gets a controlling terminal.  The first
 * process returns (in main) once the second has forked. */
static int
daemonize (struct mc_error *err)
{
  pid_t pid = fork ();
  int status;

  if (pid < 0)
    return mc_error_set (err, errno, "fork");
  if (pid > 0)
    {
      while (waitpid (pid, &status, 0) < 0 && errno == EINTR)
        ;
      _exit (0);
    }
  if (setsid () < 0)
    _exit (1);
  pid = fork ();
  if (pid < 0)
    return mc_error_set (err, errno, "fork");
  if (pid > 0)
    _exit (0);
  return 0;
}

/* The monitor's own stdio go to /dev/null, and no fd of the daemon's but
 * the sync socket stays open. */
static int
detach_fds (struct mc_error *err)
{
  int null = open ("/dev/null", O_RDWR | O_CLOEXEC);

  if (null < 0)
    return mc_error_set (err, errno, "open `/dev/null`");
  for (int fd = 0; fd < 3; fd++)
    if (dup2 (null, fd) < 0)
      return mc_error_set (err, errno, "dup2 `/dev/null`");
  if (null > SYNC_FD)
    close (null);
  if (syscall (SYS_close_range, SYNC_FD + 1, ~0U, 0U) < 0)
    return mc_error_set (err, errno, "close_range");
  if (chdir ("/") < 0)
    return mc_error_set (err, errno, "chdir `/`");
  return 0;
}

int
main (int argc, char **argv)
{
  struct monitor m = {
    .ctr = { .pid = -1, .sync_fd = -1, .pty_master = -1 },
    .pty_fd = -1,
    .sync_fd = SYNC_FD, .sig_fd = -1, .listen_fd = -1, .log_fd = -1,
    .out_fd = -1, .err_fd = -1, .in_fd = -1,
    .log_out = { .name = "stdout" }, .log_err = { .name = "stderr" },
  };
  struct mc_error err;

  if (argc != 2 || fcntl (SYNC_FD, F_GETFD) < 0)
    {
      fprintf (stderr, "usage: %s CONFIG_PATH  (with fd 3 the sync socket)\n", argv[0]);
      return 2;
    }
  signal (SIGPIPE, SIG_IGN);
  fcntl (SYNC_FD, F_SETFD, FD_CLOEXEC);
  if (mc_config_load (&m.cfg, argv[1], &err) < 0 || detach_fds (&err) < 0
      || daemonize (&err) < 0)
    {
      sync_error (&m, &err);
      return 1;
    }
  prctl (PR_SET_NAME, "minictr:[monitor]", 0, 0, 0);
  if (monitor_setup (&m, &err) < 0)
    {
      sync_error (&m, &err);
      kill_container (&m);
      if (m.listen_fd >= 0)
        unlink (m.cfg.attach_path);
      return 1;
    }
  sync_write (&m, "created %d %d", m.ctr.pid, getpid ());
  while (!m.exited || m.out_fd >= 0 || m.err_fd >= 0)
    if (monitor_poll_once (&m) < 0)
      break;
  monitor_finish (&m);
}
