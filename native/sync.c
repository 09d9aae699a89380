/* The parent/child protocol, in the manner of runc's nsexec.c.
 *
 * The parent (the monitor, or the Python daemon through cffi) and the cloned
 * child talk over a SOCK_SEQPACKET socketpair: one fixed-size message per
 * send, and EOF when the other side is gone.  The child's end is O_CLOEXEC,
 * so the parent reading EOF after MC_SYNC_RELEASE means execve succeeded.
 */
#include "mc.h"

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

struct mc_sync_msg
{
  uint32_t type;
  int32_t errnum;
  char msg[sizeof ((struct mc_error *) 0)->msg];
};

int
mc_sync_send (int fd, enum mc_sync_type type, const struct mc_error *payload,
              struct mc_error *err)
{
  struct mc_sync_msg m = { .type = type };
  ssize_t n;

  if (payload != NULL)
    {
      m.errnum = payload->errnum;
      memcpy (m.msg, payload->msg, sizeof m.msg);
    }
  do
    n = send (fd, &m, sizeof m, MSG_NOSIGNAL);
  while (n < 0 && errno == EINTR);
  if (n < 0)
    return mc_error_set (err, errno, "send sync message %#x", type);
  return 0;
}

int
mc_sync_recv (int fd, enum mc_sync_type *type, struct mc_error *payload,
              struct mc_error *err)
{
  struct mc_sync_msg m;
  ssize_t n;

  do
    n = recv (fd, &m, sizeof m, 0);
  while (n < 0 && errno == EINTR);
  if (n < 0)
    return mc_error_set (err, errno, "recv sync message");
  if (n == 0)
    return 0;
  if ((size_t) n != sizeof m)
    return mc_error_set (err, EPROTO, "recv sync message: %zd bytes", n);
  *type = (enum mc_sync_type) m.type;
  if (payload != NULL)
    {
      payload->errnum = m.errnum;
      memcpy (payload->msg, m.msg, sizeof m.msg);
      payload->msg[sizeof payload->msg - 1] = '\0';
    }
  return 1;
}

int
mc_sync_expect (int fd, enum mc_sync_type expected, struct mc_error *err)
{
  enum mc_sync_type type;
  int ret = mc_sync_recv (fd, &type, err, err);

  if (ret < 0)
    return -1;
  if (ret == 0)
    return mc_error_set (err, EPIPE, "sync: the other side exited before message %#x",
                         expected);
  if (type == MC_SYNC_ERROR)
    return -1; /* err holds the other side's (errnum, msg) */
  if (type != expected)
    return mc_error_set (err, EPROTO, "sync: expected message %#x, got %#x", expected, type);
  return 0;
}

/* A message that carries a file descriptor (SCM_RIGHTS) beside its type. */
int
mc_sync_send_fd (int fd, enum mc_sync_type type, int passed, struct mc_error *err)
{
  struct mc_sync_msg m = { .type = type };
  union
  {
    char buf[CMSG_SPACE (sizeof (int))];
    struct cmsghdr align;
  } control = { 0 };
  struct iovec iov = { .iov_base = &m, .iov_len = sizeof m };
  struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf,
                        .msg_controllen = sizeof control.buf };
  struct cmsghdr *cmsg = CMSG_FIRSTHDR (&msg);
  ssize_t n;

  cmsg->cmsg_level = SOL_SOCKET;
  cmsg->cmsg_type = SCM_RIGHTS;
  cmsg->cmsg_len = CMSG_LEN (sizeof (int));
  memcpy (CMSG_DATA (cmsg), &passed, sizeof passed);
  do
    n = sendmsg (fd, &msg, MSG_NOSIGNAL);
  while (n < 0 && errno == EINTR);
  if (n < 0)
    return mc_error_set (err, errno, "sendmsg sync message %#x", type);
  return 0;
}

int
mc_sync_expect_fd (int fd, enum mc_sync_type expected, int *passed, struct mc_error *err)
{
  struct mc_sync_msg m;
  union
  {
    char buf[CMSG_SPACE (sizeof (int))];
    struct cmsghdr align;
  } control;
  struct iovec iov = { .iov_base = &m, .iov_len = sizeof m };
  struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf,
                        .msg_controllen = sizeof control.buf };
  struct cmsghdr *cmsg;
  ssize_t n;

  *passed = -1;
  do
    n = recvmsg (fd, &msg, MSG_CMSG_CLOEXEC);
  while (n < 0 && errno == EINTR);
  if (n < 0)
    return mc_error_set (err, errno, "recvmsg sync message");
  cmsg = CMSG_FIRSTHDR (&msg);
  if (cmsg != NULL && cmsg->cmsg_level == SOL_SOCKET && cmsg->cmsg_type == SCM_RIGHTS
      && cmsg->cmsg_len == CMSG_LEN (sizeof (int)))
    memcpy (passed, CMSG_DATA (cmsg), sizeof *passed);
  if (n == 0)
    return mc_error_set (err, EPIPE, "sync: the other side exited before message %#x",
                         expected);
  if ((size_t) n == sizeof m && m.type == MC_SYNC_ERROR)
    {
      err->errnum = m.errnum;
      memcpy (err->msg, m.msg, sizeof err->msg);
      err->msg[sizeof err->msg - 1] = '\0';
    }
  else if ((size_t) n != sizeof m || m.type != (uint32_t) expected)
    mc_error_set (err, EPROTO, "sync: expected message %#x, got %zd bytes", expected, n);
  else if (*passed < 0)
    mc_error_set (err, EPROTO, "sync: message %#x without its file descriptor", expected);
  else
    return 0;
  if (*passed >= 0)
    close (*passed);
  *passed = -1;
  return -1;
}

void
mc_child_fail (int sync_fd, const struct mc_error *err, int status)
{
  struct mc_error ignored;

  mc_sync_send (sync_fd, MC_SYNC_ERROR, err, &ignored);
  _exit (status);
}

/* clone(2) used like fork(2): no new stack, the child returns here with 0.
 * glibc's clone() wrapper insists on a function and a stack, and fork()
 * cannot take namespace flags; CLONE_NEWPID must be given at clone time
 * for the child itself to be PID 1. */
pid_t
mc_clone (unsigned long flags, struct mc_error *err)
{
  long pid = syscall (SYS_clone, flags | SIGCHLD, NULL, NULL, NULL, NULL);

  if (pid < 0)
    return mc_error_set (err, errno, "clone flags %#lx", flags);
  return (pid_t) pid;
}
