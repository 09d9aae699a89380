/* Spawning a process in a running container (docker exec): join the
 * namespaces and cgroups of its init, set up as the init was set up (cwd,
 * capabilities, user), and wait just before execve until the monitor
 * releases it, exactly as mc_container_spawn leaves an init.
 *
 * A process cannot move itself into another PID namespace: setns on a PID
 * namespace only chooses the namespace of the caller's future children.  So
 * the monitor enters it itself and forks; the exec'd process is then the
 * monitor's direct child (reaped like an init) and a member of the
 * container's PID namespace.  Every other namespace is joined by the child.
 */
#include "mc.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/nsfs.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

/* In the order the child joins them.  The user namespace comes first: once
 * in it, the child holds every capability over the namespaces it owns (the
 * container's), whatever the kernel asks for the next setns calls (those it
 * does not own are joined before it: join_namespaces).  Mount
 * comes last among the child's: it replaces root and cwd with the
 * container's.  PID is the monitor's own business (above). */
enum ns_slot
{
  NS_USER,
  NS_CGROUP,
  NS_IPC,
  NS_UTS,
  NS_NET,
  NS_MNT,
  NS_PID,
  NS_COUNT,
};

static const struct
{
  const char *name;
  int type;
} namespaces[NS_COUNT] = {
  [NS_USER] = { "user", CLONE_NEWUSER }, [NS_CGROUP] = { "cgroup", CLONE_NEWCGROUP },
  [NS_IPC] = { "ipc", CLONE_NEWIPC },    [NS_UTS] = { "uts", CLONE_NEWUTS },
  [NS_NET] = { "net", CLONE_NEWNET },    [NS_MNT] = { "mnt", CLONE_NEWNS },
  [NS_PID] = { "pid", CLONE_NEWPID },
};

struct target_ns
{
  int fd[NS_COUNT]; /* -1: not to be joined */
};

static void
close_namespaces (struct target_ns *t)
{
  for (int i = 0; i < NS_COUNT; i++)
    if (t->fd[i] >= 0)
      close (t->fd[i]);
}

static bool
same_file (int a, int b)
{
  struct stat sa, sb;

  return fstat (a, &sa) == 0 && fstat (b, &sb) == 0 && sa.st_dev == sb.st_dev
         && sa.st_ino == sb.st_ino;
}

/* A namespace the container shares with us is left out: joining our own user
 * namespace fails with EINVAL (a container as root has none of its own), and
 * the host's others (--pid/--ipc/--uts/--cgroupns host, rootless) with EPERM
 * once we are in the container's user namespace.  We are in them already. */
static int
skip_own_namespaces (struct target_ns *t, struct mc_error *err)
{
  char path[64];

  for (int i = 0; i < NS_COUNT; i++)
    {
      snprintf (path, sizeof path, "/proc/self/ns/%s", namespaces[i].name);
      cleanup_fd int own = open (path, O_RDONLY | O_CLOEXEC);

      if (own < 0)
        return mc_error_set (err, errno, "open `%s`", path);
      if (same_file (own, t->fd[i]))
        {
          close (t->fd[i]);
          t->fd[i] = -1;
        }
    }
  return 0;
}

/* Open every namespace of PID, and make sure with a pidfd taken first that
 * they all belong to one process that is still alive (a recycled pid would
 * otherwise put the exec into a stranger's namespaces). */
static int
open_namespaces (pid_t pid, struct target_ns *t, struct mc_error *err)
{
  char path[64];
  cleanup_fd int pidfd = (int) syscall (SYS_pidfd_open, pid, 0);

  for (int i = 0; i < NS_COUNT; i++)
    t->fd[i] = -1;
  if (pidfd < 0)
    return mc_error_set (err, errno, "pidfd_open %d (the container's init)", pid);
  for (int i = 0; i < NS_COUNT; i++)
    {
      snprintf (path, sizeof path, "/proc/%d/ns/%s", pid, namespaces[i].name);
      t->fd[i] = open (path, O_RDONLY | O_CLOEXEC);
      if (t->fd[i] < 0)
        {
          mc_error_set (err, errno, "open `%s`", path);
          close_namespaces (t);
          return -1;
        }
    }
  if (syscall (SYS_pidfd_send_signal, pidfd, 0, NULL, 0) < 0)
    {
      mc_error_set (err, errno, "pidfd_send_signal %d (the container's init)", pid);
      close_namespaces (t);
      return -1;
    }
  if (skip_own_namespaces (t, err) < 0)
    {
      close_namespaces (t);
      return -1;
    }
  return 0;
}

/* Whether the namespace FD belongs to the user namespace USERNS (an fd). */
static bool
owned_by (int fd, int userns)
{
  cleanup_fd int owner = ioctl (fd, NS_GET_USERNS);

  return owner >= 0 && same_file (owner, userns);
}

/* A namespace the container's user namespace does not own (rootless
 * --network host: the daemon's; --network container:X: X's) is joined before
 * that user namespace, while the child still holds capabilities over it;
 * the ones it owns after, in the order above. */
static int
join_namespaces (const struct target_ns *t, struct mc_error *err)
{
  bool early[NS_COUNT] = { false };

  if (t->fd[NS_USER] >= 0)
    for (int i = 0; i < NS_COUNT; i++)
      early[i] = i != NS_USER && i != NS_PID && t->fd[i] >= 0 && !owned_by (t->fd[i], t->fd[NS_USER]);
  for (int pass = 0; pass < 2; pass++)
    for (int i = 0; i < NS_COUNT; i++)
      if (i != NS_PID && t->fd[i] >= 0 && early[i] == (pass == 0)
          && setns (t->fd[i], namespaces[i].type) < 0)
        return mc_error_set (err, errno, "setns %s namespace", namespaces[i].name);
  return 0;
}

static int
child_setup (const struct mc_config *cfg, const struct mc_stdio *stdio, const struct target_ns *t,
             int *sync_fd, struct mc_error *err)
{
  /* Into the container's cgroups while their paths are still the host's
   * and before the cgroup namespace makes them our root ("0" is ourselves). */
  if (mc_cgroups_join (cfg, 0, err) < 0 || join_namespaces (t, err) < 0)
    return -1;
  /* Docker does not create a missing working directory for an exec. */
  if (chdir (cfg->cwd) < 0)
    return mc_error_set (err, errno, "chdir `%s`", cfg->cwd);
  /* In the container's mount namespace: the pty comes from its own devpts. */
  return mc_process_finish (cfg, stdio, sync_fd, err);
}

__attribute__ ((noreturn)) static void
child_main (const struct mc_config *cfg, const struct mc_stdio *stdio, const struct target_ns *t,
            int sync_fd)
{
  struct mc_error err;

  prctl (PR_SET_NAME, "minictr:[exec]", 0, 0, 0);
  mc_signals_reset ();
  if (child_setup (cfg, stdio, t, &sync_fd, &err) < 0)
    mc_child_fail (sync_fd, &err, 1);
  if (mc_sync_send (sync_fd, MC_SYNC_CREATED, NULL, &err) < 0
      || mc_sync_expect (sync_fd, MC_SYNC_RELEASE, &err) < 0)
    _exit (1);
  mc_exec_path (cfg->argv, cfg->env, &err);
  mc_child_fail (sync_fd, &err, err.errnum == ENOENT ? 127 : 126);
}

int
mc_exec_spawn (const struct mc_config *cfg, const struct mc_stdio *stdio, struct mc_container *c,
               struct mc_error *err)
{
  struct target_ns t;
  int sv[2];
  pid_t pid;

  c->pty_master = -1;
  if (!cfg->tty && (stdio->in < 3 || stdio->out < 3 || stdio->err < 3))
    return mc_error_set (err, EINVAL, "exec: stdio fds must be above 2");
  /* The child runs this (host) binary in the container's PID namespace
   * between fork and execve, with the container's capabilities and user from
   * mc_process_finish on: were it dumpable, a process of the container could
   * open /proc/PID/exe and reach the monitor's binary on the host
   * (CVE-2019-5736).  Set before any namespace is joined, so that the child
   * never exists there dumpable; execve makes the exec'd program dumpable as
   * usual. */
  if (prctl (PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
    return mc_error_set (err, errno, "prctl PR_SET_DUMPABLE 0");
  if (open_namespaces (cfg->exec_pid, &t, err) < 0)
    return -1;
  /* Only the monitor's future children are affected; it forks nothing else. */
  if (t.fd[NS_PID] >= 0 && setns (t.fd[NS_PID], CLONE_NEWPID) < 0)
    {
      mc_error_set (err, errno, "setns pid namespace of %d", cfg->exec_pid);
      close_namespaces (&t);
      return -1;
    }
  if (socketpair (AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
    {
      mc_error_set (err, errno, "socketpair");
      close_namespaces (&t);
      return -1;
    }
  cleanup_fd int parent_end = sv[0];
  cleanup_fd int child_end = sv[1];
  cleanup_fd int pty_master = -1;
  /* ENOMEM here means the PID namespace has no init any more. */
  pid = mc_clone (0, err);
  if (pid == 0)
    {
      close (mc_steal_fd (&parent_end));
      child_main (cfg, stdio, &t, mc_steal_fd (&child_end));
    }
  close_namespaces (&t);
  if (pid < 0)
    return -1;
  close (mc_steal_fd (&child_end));
  if ((cfg->tty && mc_pty_recv_master (parent_end, &pty_master, err) < 0)
      || mc_sync_expect (parent_end, MC_SYNC_CREATED, err) < 0)
    {
      kill (pid, SIGKILL);
      waitpid (pid, NULL, 0);
      return -1;
    }
  c->pid = pid;
  c->sync_fd = mc_steal_fd (&parent_end);
  c->pty_master = mc_steal_fd (&pty_master);
  return 0;
}
