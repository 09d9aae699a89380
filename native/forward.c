/* Published ports: copy bytes between two connected sockets, a thread per direction.
 *
 * The daemon is Python: a byte loop there holds the GIL and tops out far below
 * a container's nc. Here each direction of a connection is a detached thread
 * that reads into a buffer of its own and writes it out, so Python only accepts
 * and connects.
 *
 * Why a copy and not splice(2), which this file used first: spliced bytes keep
 * the client's socket buffers, pages mostly empty, all the way into the
 * container's receive queue. The kernel charges a socket for those pages, so a
 * reader that takes 1 KiB at a time (busybox nc) is left a small window: ss
 * showed its receive buffer stuck at 128 KiB and the sender limited by that
 * window 57 % of the time; copied, the buffer grew to 226 KiB. Into a
 * container's nc, rootless, copying was 10-15 % faster than splicing (and than
 * Podman's rootlessport, which splices). A fast reader pays instead: on this
 * 2-core VM a reader taking 1 MiB at a time got ~1.4 GB/s copied, ~1.8 spliced.
 * 32 KiB, as Go's io.Copy, did better for nc than 256 KiB or 1 MiB.
 *
 * Forwards are grouped by the container that published them, so that a
 * container which stops (kill -9 included, where no FIN ever comes back) can
 * have its connections shut down at once.
 */
#include "mc.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#define FORWARD_BUFFER_SIZE (32 * 1024)
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
copy_all (int in, int out, char *buffer)
{
  for (;;)
    {
      ssize_t n = recv (in, buffer, FORWARD_BUFFER_SIZE, 0);
      if (n == 0)
        return 0;
      if (n < 0)
        {
          if (errno == EINTR)
            continue;
          return -1;
        }
      for (ssize_t done = 0; done < n;)
        {
          ssize_t m = send (out, buffer + done, n - done, MSG_NOSIGNAL);
          if (m < 0 && errno == EINTR)
            continue;
          if (m <= 0)
            return -1;
          done += m;
        }
    }
}

static void *
forward_direction (void *arg)
{
  struct direction *d = arg;
  struct forward *fw = d->fw;
  char *buffer = malloc (FORWARD_BUFFER_SIZE);
  int ok = buffer != NULL && copy_all (d->in, d->out, buffer) == 0;

  free (buffer);
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
