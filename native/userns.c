/* The rootless daemon wrapper's namespaces (docs/internals.md,
 * "minictr._native"): a child in new user + mount + network namespaces that
 * waits while the caller writes its id maps with newuidmap/newgidmap; or a
 * child that joins the namespaces a holder process keeps (so that a restarted
 * daemon finds its running containers in the namespaces it left them in).
 *
 * Called from Python, which may have threads: the child must not touch
 * malloc or any lock between clone and execve, only syscalls.
 */
#include "mc.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

__attribute__ ((noreturn)) static void
userns_child_fail (int sync_fd, const char *what)
{
  struct mc_error err;

  mc_error_set (&err, errno, "%s", what);
  mc_child_fail (sync_fd, &err, 1);
}

__attribute__ ((noreturn)) static void
userns_child (char *const argv[], char *const envp[], int sync_fd)
{
  struct mc_error err;

  prctl (PR_SET_NAME, "minictr:[userns]", 0, 0, 0);
  if (mc_sync_expect (sync_fd, MC_SYNC_RELEASE, &err) < 0)
    _exit (1); /* the caller went away without releasing us */
  if (setresgid (0, 0, 0) < 0)
    userns_child_fail (sync_fd, "setresgid 0");
  if (setresuid (0, 0, 0) < 0)
    userns_child_fail (sync_fd, "setresuid 0");
  if (mount (NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
    userns_child_fail (sync_fd, "mount `/` rprivate");
  execve (argv[0], argv, envp);
  mc_error_set (&err, errno, "exec `%s`", argv[0]);
  mc_child_fail (sync_fd, &err, err.errnum == ENOENT ? 127 : 126);
}

int
mc_userns_spawn (char *const argv[], char *const envp[], int *pid, int *sync_fd,
                 struct mc_error *err)
{
  int sv[2];
  pid_t child;

  if (socketpair (AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
    return mc_error_set (err, errno, "socketpair");
  cleanup_fd int parent_end = sv[0];
  cleanup_fd int child_end = sv[1];
  child = mc_clone (CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWNET, err);
  if (child < 0)
    return -1;
  if (child == 0)
    {
      close (mc_steal_fd (&parent_end));
      userns_child (argv, envp, mc_steal_fd (&child_end));
    }
  *pid = child;
  *sync_fd = mc_steal_fd (&parent_end);
  return 0;
}

/* Release the child and wait for its execve.  SYNC_FD is closed either way. */
int
mc_userns_release (int sync_fd, struct mc_error *err)
{
  struct mc_container c = { .pid = 0, .sync_fd = sync_fd };

  return mc_container_release (&c, err);
}

/* Join the user, mount and network namespaces of HOLDER_PID, then behave as a
 * spawned child: wait for mc_userns_release, become uid/gid 0, exec ARGV. */
int
mc_userns_join (int holder_pid, char *const argv[], char *const envp[], int *pid, int *sync_fd,
                struct mc_error *err)
{
  static const struct
  {
    const char *name;
    int type;
  } kinds[] = { { "user", CLONE_NEWUSER }, { "mnt", CLONE_NEWNS }, { "net", CLONE_NEWNET } };
  int ns_fds[3] = { -1, -1, -1 }, sv[2];
  pid_t child;

  /* Opened before the fork: the child may not allocate or format. */
  for (int i = 0; i < 3; i++)
    {
      char path[64];
      snprintf (path, sizeof path, "/proc/%d/ns/%s", holder_pid, kinds[i].name);
      ns_fds[i] = open (path, O_RDONLY | O_CLOEXEC);
      if (ns_fds[i] < 0)
        {
          mc_error_set (err, errno, "open `%s`", path);
          for (int j = 0; j < i; j++)
            close (ns_fds[j]);
          return -1;
        }
    }
  if (socketpair (AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
    {
      mc_error_set (err, errno, "socketpair");
      for (int i = 0; i < 3; i++)
        close (ns_fds[i]);
      return -1;
    }
  child = mc_clone (0, err);
  if (child == 0)
    {
      close (sv[0]);
      for (int i = 0; i < 3; i++)
        if (setns (ns_fds[i], kinds[i].type) < 0)
          userns_child_fail (sv[1], kinds[i].type == CLONE_NEWUSER ? "setns user"
                                    : kinds[i].type == CLONE_NEWNS ? "setns mnt" : "setns net");
      userns_child (argv, envp, sv[1]);
    }
  for (int i = 0; i < 3; i++)
    close (ns_fds[i]);
  close (sv[1]);
  if (child < 0)
    {
      close (sv[0]);
      return -1;
    }
  *pid = child;
  *sync_fd = sv[0];
  return 0;
}
