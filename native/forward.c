/* Published ports: copy bytes between two connected sockets with splice(2).
 *
 * The daemon is Python: a byte loop there holds the GIL and tops out far below
 * a container's nc. Here each direction of a connection is a detached thread
 * splicing socket -> pipe -> socket, so the bytes never enter user space and
 * Python only accepts and connects. Forwards are grouped by the container
 * that published them, so that a container which stops (kill -9 included,
 * where no FIN ever comes back) can have its connections shut down at once.
 */
#include "mc.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

/* Large enough that one splice moves a lot; at most the default pipe-max-size
 * so that an unprivileged daemon gets it too (failure just keeps 64 KiB). */
#define FORWARD_PIPE_SIZE (1 << 20)
#define FORWARD_STACK_SIZE (64 * 1024)

struct forward
{
  int fds[2];
  long long group;
  int threads_left; /* under forwards_lock */
  struct forward *prev, *next;
};

struct direction
{
  struct forward *fw;
  int in, out;
};

static pthread_mutex_t forwards_lock = PTHREAD_MUTEX_INITIALIZER;
static struct forward *forwards;
static int forwards_active;

static void
forward_unlink_locked (struct forward *fw)
{
  if (fw->prev != NULL)
    fw->prev->next = fw->next;
  else
    forwards = fw->next;
  if (fw->next != NULL)
    fw->next->prev = fw->prev;
  forwards_active--;
}

/* Move everything from `in` to `out` until EOF or an error; 0 on EOF. */
static int
splice_all (int in, int out, int pipe_fds[2])
{
  for (;;)
    {
      ssize_t n = splice (in, NULL, pipe_fds[1], NULL, FORWARD_PIPE_SIZE, SPLICE_F_MOVE | SPLICE_F_MORE);
      if (n == 0)
        return 0;
      if (n < 0)
        {
          if (errno == EINTR)
            continue;
          return -1;
        }
      while (n > 0)
        {
          ssize_t m = splice (pipe_fds[0], NULL, out, NULL, n, SPLICE_F_MOVE | SPLICE_F_MORE);
          if (m < 0 && errno == EINTR)
            continue;
          if (m <= 0)
            return -1;
          n -= m;
        }
    }
}

static void *
forward_direction (void *arg)
{
  struct direction *d = arg;
  struct forward *fw = d->fw;
  int pipe_fds[2] = { -1, -1 };
  int ok = 0;

  if (pipe2 (pipe_fds, O_CLOEXEC) == 0)
    {
      (void) fcntl (pipe_fds[1], F_SETPIPE_SZ, FORWARD_PIPE_SIZE);
      ok = splice_all (d->in, d->out, pipe_fds) == 0;
      close (pipe_fds[0]);
      close (pipe_fds[1]);
    }
  if (ok)
    shutdown (d->out, SHUT_WR); /* pass the EOF on: the other direction may go on */
  else
    {
      /* A reset or a broken pipe ends the connection both ways: wake the other thread. */
      shutdown (d->in, SHUT_RDWR);
      shutdown (d->out, SHUT_RDWR);
    }
  free (d);

  pthread_mutex_lock (&forwards_lock);
  int last = --fw->threads_left == 0;
  if (last)
    forward_unlink_locked (fw);
  pthread_mutex_unlock (&forwards_lock);
  if (last)
    {
      close (fw->fds[0]);
      close (fw->fds[1]);
      free (fw);
    }
  return NULL;
}

static int
set_blocking (int fd, struct mc_error *err)
{
  int flags = fcntl (fd, F_GETFL);
  if (flags < 0 || fcntl (fd, F_SETFL, flags & ~O_NONBLOCK) < 0)
    return mc_error_set (err, errno, "fcntl fd %d", fd);
  return 0;
}

static int
start_direction (struct forward *fw, int in, int out, pthread_attr_t *attr, struct mc_error *err)
{
  pthread_t thread;
  struct direction *d = malloc (sizeof *d);
  int ret;

  if (d == NULL)
    return mc_error_set (err, ENOMEM, "malloc");
  *d = (struct direction) { .fw = fw, .in = in, .out = out };
  ret = pthread_create (&thread, attr, forward_direction, d);
  if (ret != 0)
    {
      free (d);
      return mc_error_set (err, ret, "pthread_create");
    }
  return 0;
}

/* Forward between two connected stream sockets until both directions end.
 * Takes both fds on success (they are closed by the last thread); on failure
 * the caller still owns them. */
int
mc_forward_start (int a, int b, long long group, struct mc_error *err)
{
  pthread_attr_t attr;
  struct forward *fw;
  int ret = -1;

  if (set_blocking (a, err) < 0 || set_blocking (b, err) < 0)
    return -1;
  fw = calloc (1, sizeof *fw);
  if (fw == NULL)
    return mc_error_set (err, ENOMEM, "malloc");
  *fw = (struct forward) { .fds = { a, b }, .group = group, .threads_left = 2 };
  pthread_attr_init (&attr);
  pthread_attr_setdetachstate (&attr, PTHREAD_CREATE_DETACHED);
  pthread_attr_setstacksize (&attr, FORWARD_STACK_SIZE);

  pthread_mutex_lock (&forwards_lock);
  fw->next = forwards;
  if (forwards != NULL)
    forwards->prev = fw;
  forwards = fw;
  forwards_active++;
  if (start_direction (fw, a, b, &attr, err) < 0)
    {
      forward_unlink_locked (fw);
      free (fw);
    }
  else if (start_direction (fw, b, a, &attr, err) < 0)
    {
      /* The first thread is running: make it end; it will close both fds. */
      fw->threads_left = 1;
      shutdown (a, SHUT_RDWR);
      shutdown (b, SHUT_RDWR);
      ret = 0;
    }
  else
    ret = 0;
  pthread_mutex_unlock (&forwards_lock);
  pthread_attr_destroy (&attr);
  return ret;
}

/* End every connection of `group` (a container that stopped); their threads close the fds. */
int
mc_forward_shutdown_group (long long group, struct mc_error *err)
{
  (void) err;
  pthread_mutex_lock (&forwards_lock);
  for (struct forward *fw = forwards; fw != NULL; fw = fw->next)
    if (fw->group == group)
      {
        shutdown (fw->fds[0], SHUT_RDWR);
        shutdown (fw->fds[1], SHUT_RDWR);
      }
  pthread_mutex_unlock (&forwards_lock);
  return 0;
}

/* Connections being forwarded for `group`, or for all groups when group < 0. */
int
mc_forward_count (long long group)
{
  int n = 0;

  pthread_mutex_lock (&forwards_lock);
  if (group < 0)
    n = forwards_active;
  else
    for (struct forward *fw = forwards; fw != NULL; fw = fw->next)
      n += fw->group == group;
  pthread_mutex_unlock (&forwards_lock);
  return n;
}
