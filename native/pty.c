/* The container's terminal (`run -t`, `exec -t`), in the manner of runc's
 * console handling and crun's terminal.c.
 *
 * The pty is opened by the container's process itself, after pivot_root, from
 * the container's own devpts instance: the slave is then /dev/pts/N inside the
 * container (`tty` prints a path that exists there), and nothing of the host's
 * /dev/pts is reachable.  The master goes to the monitor over the sync socket
 * (SCM_RIGHTS); the monitor never holds the slave, so the master reads EIO
 * once every process of the container has let go of it.
 */
#include "mc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

/* The slave of MASTER, opened without a path lookup where the kernel can
 * (TIOCGPTPEER, Linux 4.13): a path could be swapped under us by the image. */
static int
open_slave (int master, struct mc_error *err)
{
  char name[64];
  int fd = ioctl (master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);

  if (fd >= 0)
    return fd;
  if (errno != EINVAL && errno != ENOTTY)
    return mc_error_set (err, errno, "ioctl TIOCGPTPEER");
  if (ptsname_r (master, name, sizeof name) != 0)
    return mc_error_set (err, errno, "ptsname");
  fd = open (name, O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (fd < 0)
    return mc_error_set (err, errno, "open `%s`", name);
  return fd;
}

/* A new session with SLAVE as its controlling terminal and as fds 0-2: the
 * shell then owns job control, and ^C on the master is its SIGINT. */
static int
become_terminal_session (int slave, struct mc_error *err)
{
  if (setsid () < 0)
    return mc_error_set (err, errno, "setsid");
  if (ioctl (slave, TIOCSCTTY, 0) < 0)
    return mc_error_set (err, errno, "ioctl TIOCSCTTY");
  for (int fd = 0; fd < 3; fd++)
    if (dup2 (slave, fd) < 0)
      return mc_error_set (err, errno, "dup2 pty to %d", fd);
  return 0;
}

int
mc_pty_open_child (int sync_fd, uid_t owner, struct mc_error *err)
{
  cleanup_fd int master = open ("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
  cleanup_fd int slave = -1;

  if (master < 0)
    return mc_error_set (err, errno, "open `/dev/ptmx`");
  if (unlockpt (master) < 0)
    return mc_error_set (err, errno, "unlockpt");
  slave = open_slave (master, err);
  if (slave < 0)
    return -1;
  /* The group is devpts' gid= (tty) when the user namespace maps it; the
   * owner must be the user the process runs as, or it cannot chmod its own
   * terminal (mesg, some shells).  runc does the same (fixStdioPermissions). */
  if (owner != 0 && fchown (slave, owner, (gid_t) -1) < 0)
    return mc_error_set (err, errno, "fchown pty slave to %u", (unsigned) owner);
  if (become_terminal_session (slave, err) < 0)
    return -1;
  return mc_sync_send_fd (sync_fd, MC_SYNC_PTY_MASTER, master, err);
}

int
mc_pty_recv_master (int sync_fd, int *master, struct mc_error *err)
{
  return mc_sync_expect_fd (sync_fd, MC_SYNC_PTY_MASTER, master, err);
}

int
mc_pty_resize (int master, unsigned int rows, unsigned int cols, struct mc_error *err)
{
  struct winsize ws = { .ws_row = (unsigned short) rows, .ws_col = (unsigned short) cols };

  if (rows > 0xffff || cols > 0xffff)
    return mc_error_set (err, EINVAL, "resize %ux%u: out of range", rows, cols);
  if (ioctl (master, TIOCSWINSZ, &ws) < 0)
    return mc_error_set (err, errno, "ioctl TIOCSWINSZ");
  return 0;
}
