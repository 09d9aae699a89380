/* Spawning the container's init: clone into new namespaces, let the parent
 * write id maps and cgroups, build the filesystem, drop privileges, and wait
 * just before execve until the monitor releases it.
 *
 * This is a C stage because the caller must not run between clone and exec
 * (a Python daemon has threads and locks that a cloned child would inherit
 * in an unknown state; the monitor keeps the same code for one path).
 */
#include "mc.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <linux/capability.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define MC_DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

/* Docker's default capability set: 14 capabilities, mask 0xa80425fb. */
static const int default_caps[] = {
  CAP_CHOWN,     CAP_DAC_OVERRIDE, CAP_FSETID,           CAP_FOWNER,     CAP_MKNOD,
  CAP_NET_RAW,   CAP_SETGID,       CAP_SETUID,           CAP_SETFCAP,    CAP_SETPCAP,
  CAP_NET_BIND_SERVICE, CAP_SYS_CHROOT, CAP_KILL,        CAP_AUDIT_WRITE,
};

uint64_t
mc_caps_default (void)
{
  uint64_t mask = 0;

  for (size_t i = 0; i < sizeof default_caps / sizeof default_caps[0]; i++)
    mask |= UINT64_C (1) << default_caps[i];
  return mask;
}

/* The bounding set (what execve will grant) and ambient; permitted and
 * effective stay as they are for the user switch, which needs CAP_SETUID and
 * CAP_SETGID even when the container drops them (mc_caps_set comes after). */
int
mc_caps_drop (uint64_t mask, struct mc_error *err)
{
  /* PR_CAPBSET_READ fails with EINVAL past the kernel's last capability. */
  for (int cap = 0; cap < 64 && prctl (PR_CAPBSET_READ, cap, 0, 0, 0) >= 0; cap++)
    if (!(mask & (UINT64_C (1) << cap)) && prctl (PR_CAPBSET_DROP, cap, 0, 0, 0) < 0)
      return mc_error_set (err, errno, "prctl PR_CAPBSET_DROP %d", cap);
  if (prctl (PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0)
    return mc_error_set (err, errno, "prctl PR_CAP_AMBIENT_CLEAR_ALL");
  return 0;
}

/* After the user switch: permitted and effective become the bounding set
 * for root; a switch to a non-zero uid has cleared them already, as Docker
 * leaves them for a non-root user.  Inheritable stays empty, as in Docker. */
int
mc_caps_set (const struct mc_config *cfg, struct mc_error *err)
{
  struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
  struct __user_cap_data_struct data[2];
  uint64_t mask = 0;

  if (cfg->uid != 0)
    return 0;
  /* permitted must not grow at execve: the kernel would then make the
   * container's process non-dumpable (its /proc/PID files root's only). */
  for (int cap = 0, in; cap < 64 && (in = prctl (PR_CAPBSET_READ, cap, 0, 0, 0)) >= 0; cap++)
    if (in)
      mask |= UINT64_C (1) << cap;
  memset (data, 0, sizeof data);
  data[0].effective = data[0].permitted = (uint32_t) mask;
  data[1].effective = data[1].permitted = (uint32_t) (mask >> 32);
  if (syscall (SYS_capset, &hdr, data) < 0)
    return mc_error_set (err, errno, "capset %#llx", (unsigned long long) mask);
  return 0;
}

int
mc_user_switch (const struct mc_config *cfg, struct mc_error *err)
{
  if (setgroups (cfg->n_groups, cfg->groups) < 0)
    return mc_error_set (err, errno, "setgroups");
  if (setresgid (cfg->gid, cfg->gid, cfg->gid) < 0)
    return mc_error_set (err, errno, "setresgid %u", (unsigned) cfg->gid);
  if (setresuid (cfg->uid, cfg->uid, cfg->uid) < 0)
    return mc_error_set (err, errno, "setresuid %u", (unsigned) cfg->uid);
  return 0;
}

static int
loopback_up (struct mc_error *err)
{
  cleanup_fd int sock = socket (AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  struct ifreq ifr = { 0 };

  if (sock < 0)
    return mc_error_set (err, errno, "socket AF_INET");
  strcpy (ifr.ifr_name, "lo");
  if (ioctl (sock, SIOCGIFFLAGS, &ifr) < 0)
    return mc_error_set (err, errno, "ioctl SIOCGIFFLAGS `lo`");
  ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
  if (ioctl (sock, SIOCSIFFLAGS, &ifr) < 0)
    return mc_error_set (err, errno, "ioctl SIOCSIFFLAGS `lo`");
  return 0;
}

/* Docker creates a missing working directory; so do we, as root, before the
 * user switch, and enter it while we still may. */
static int
enter_cwd (const char *cwd, struct mc_error *err)
{
  char path[PATH_MAX];
  size_t len = strlen (cwd);

  if (len >= sizeof path)
    return mc_error_set (err, ENAMETOOLONG, "chdir `%s`", cwd);
  memcpy (path, cwd, len + 1);
  for (size_t i = 1; i <= len; i++)
    {
      if (path[i] != '/' && path[i] != '\0')
        continue;
      char saved = path[i];
      path[i] = '\0';
      if (mkdir (path, 0755) < 0 && errno != EEXIST)
        return mc_error_set (err, errno, "mkdir `%s`", path);
      path[i] = saved;
    }
  if (chdir (cwd) < 0)
    return mc_error_set (err, errno, "chdir `%s`", cwd);
  return 0;
}

/* The monitor blocks SIGCHLD for its signalfd and ignores SIGPIPE; neither
 * may leak into the container (ignored dispositions survive execve). */
void
mc_signals_reset (void)
{
  sigset_t none;

  for (int sig = 1; sig < NSIG; sig++)
    if (sig != SIGKILL && sig != SIGSTOP)
      signal (sig, SIG_DFL);
  sigemptyset (&none);
  sigprocmask (SIG_SETMASK, &none, NULL);
}

/* Put the container's stdio on 0-2, the sync socket on 3 (O_CLOEXEC), and
 * close everything else: no fd of the monitor or the daemon leaks in.  A
 * stdio fd of -1 is already in place (a pty: mc_pty_open_child). */
int
mc_stdio_arrange (const struct mc_stdio *stdio, int *sync_fd, struct mc_error *err)
{
  const int fds[3] = { stdio->in, stdio->out, stdio->err };

  for (int i = 0; i < 3; i++)
    if (fds[i] >= 0 && dup2 (fds[i], i) < 0)
      return mc_error_set (err, errno, "dup2 %d to %d", fds[i], i);
  if (*sync_fd != 3)
    {
      if (dup3 (*sync_fd, 3, O_CLOEXEC) < 0)
        return mc_error_set (err, errno, "dup3 sync socket");
      *sync_fd = 3;
    }
  if (syscall (SYS_close_range, 4U, ~0U, 0U) < 0)
    return mc_error_set (err, errno, "close_range 4..");
  return 0;
}

/* The last steps before execve, the same for a container's init and for an
 * exec: the pty (opened while we may still chown it), the capabilities, the
 * user, and the stdio. */
int
mc_process_finish (const struct mc_config *cfg, const struct mc_stdio *stdio, int *sync_fd,
                   struct mc_error *err)
{
  if (cfg->tty && mc_pty_open_child (*sync_fd, cfg->uid, err) < 0)
    return -1;
  if (mc_rlimits_apply (cfg, err) < 0 || mc_oom_score_adj_apply (cfg, err) < 0)
    return -1;
  if (mc_seccomp_apply_early (cfg, err) < 0)
    return -1;
  if (mc_caps_drop (cfg->caps, err) < 0 || mc_user_switch (cfg, err) < 0
      || mc_caps_set (cfg, err) < 0)
    return -1;
  if (mc_stdio_arrange (stdio, sync_fd, err) < 0)
    return -1;
  return mc_seccomp_apply_late (cfg, err);
}

static int
child_setup (const struct mc_config *cfg, const struct mc_stdio *stdio, int *sync_fd,
             struct mc_error *err)
{
  /* In a new user namespace, become its root first, so that whatever the
   * set-up creates (mount points, cwd) is owned by a mapped id. */
  if (cfg->userns && (setresgid (0, 0, 0) < 0 || setresuid (0, 0, 0) < 0))
    return mc_error_set (err, errno, "setresuid 0 in the user namespace");
  /* After the monitor put us in our cgroups, so that they become our root. */
  if (cfg->cgroupns == NULL && unshare (CLONE_NEWCGROUP) < 0)
    return mc_error_set (err, errno, "unshare CLONE_NEWCGROUP");
  if (mc_mounts_setup (cfg, err) < 0)
    return -1;
  /* `--uts host`: the host's name is not the container's to change. */
  if (cfg->hostname && cfg->utsns == NULL && sethostname (cfg->hostname, strlen (cfg->hostname)) < 0)
    return mc_error_set (err, errno, "sethostname `%s`", cfg->hostname);
  /* A shared namespace (`netns`) is someone else's: its loopback is up already. */
  if ((cfg->netns == NULL && loopback_up (err) < 0) || enter_cwd (cfg->cwd, err) < 0)
    return -1;
  /* After pivot_root: the pty comes from the container's own devpts. */
  return mc_process_finish (cfg, stdio, sync_fd, err);
}

__attribute__ ((noreturn)) static void
child_main (const struct mc_config *cfg, const struct mc_stdio *stdio, int sync_fd)
{
  struct mc_error err;

  /* Until execve this process runs the monitor's binary inside the new PID
   * namespace: not dumpable, so that nothing in the container could open its
   * /proc/PID/exe (CVE-2019-5736).  execve of the container's program makes
   * it dumpable again as usual. */
  prctl (PR_SET_DUMPABLE, 0, 0, 0, 0);
  prctl (PR_SET_NAME, "minictr:[init]", 0, 0, 0);
  mc_signals_reset ();
  if (mc_sync_expect (sync_fd, MC_SYNC_IDS_READY, &err) < 0)
    _exit (1); /* the monitor is gone */
  if (child_setup (cfg, stdio, &sync_fd, &err) < 0)
    mc_child_fail (sync_fd, &err, 1);
  if (mc_sync_send (sync_fd, MC_SYNC_CREATED, NULL, &err) < 0
      || mc_sync_expect (sync_fd, MC_SYNC_RELEASE, &err) < 0)
    _exit (1);
  mc_exec_path (cfg->argv, cfg->env, &err);
  mc_child_fail (sync_fd, &err, err.errnum == ENOENT ? 127 : 126);
}

static int
write_file (const char *path, const char *content, size_t len, struct mc_error *err)
{
  cleanup_fd int fd = open (path, O_WRONLY | O_CLOEXEC);

  if (fd < 0)
    return mc_error_set (err, errno, "open `%s`", path);
  if (write (fd, content, len) != (ssize_t) len)
    return mc_error_set (err, errno, "write `%s`", path);
  return 0;
}

static int
write_idmap (pid_t pid, const char *file, const struct mc_idmap *maps, size_t n,
             struct mc_error *err)
{
  char path[64], buf[4096];
  size_t used = 0;

  snprintf (path, sizeof path, "/proc/%d/%s", pid, file);
  for (size_t i = 0; i < n && used < sizeof buf; i++)
    used += (size_t) snprintf (buf + used, sizeof buf - used, "%lu %lu %lu\n", maps[i].inside,
                               maps[i].outside, maps[i].count);
  if (used >= sizeof buf)
    return mc_error_set (err, E2BIG, "write `%s`: too many ranges", path);
  return write_file (path, buf, used, err);
}

int
mc_cgroups_join (const struct mc_config *cfg, pid_t pid, struct mc_error *err)
{
  char path[PATH_MAX], buf[32];
  int len = snprintf (buf, sizeof buf, "%d\n", pid);

  for (size_t i = 0; i < cfg->n_cgroups; i++)
    {
      if (snprintf (path, sizeof path, "%s/cgroup.procs", cfg->cgroups[i]) >= (int) sizeof path)
        return mc_error_set (err, ENAMETOOLONG, "cgroup `%s`", cfg->cgroups[i]);
      if (write_file (path, buf, (size_t) len, err) < 0)
        return -1;
    }
  return 0;
}

/* Rootless, a user namespace of the container's own, unless it shares the
 * daemon's (`userns_host`) or joins another container's (`userns_join`). */
static bool
new_user_namespace (const struct mc_config *cfg)
{
  return cfg->userns && !cfg->userns_host && cfg->userns_join == NULL;
}

static int
configure_child (const struct mc_config *cfg, pid_t pid, int sync_fd, int *pty_master,
                 struct mc_error *err)
{
  if (new_user_namespace (cfg))
    {
      if (write_idmap (pid, "uid_map", cfg->uidmaps, cfg->n_uidmaps, err) < 0
          || write_idmap (pid, "gid_map", cfg->gidmaps, cfg->n_gidmaps, err) < 0)
        return -1;
    }
  if (mc_cgroups_join (cfg, pid, err) < 0)
    return -1;
  if (mc_sync_send (sync_fd, MC_SYNC_IDS_READY, NULL, err) < 0)
    return -1;
  if (cfg->tty && mc_pty_recv_master (sync_fd, pty_master, err) < 0)
    return -1;
  return mc_sync_expect (sync_fd, MC_SYNC_CREATED, err);
}

/* `netns PATH` (--network container:X), `pidns PATH`, `ipcns PATH`: the monitor joins that
 * namespace itself before the clone, so the child inherits it (a PID namespace: only its
 * children, which the clone makes).  The child could not: in its new user namespace it has no
 * capability over X's namespaces, which X's user namespace owns; the monitor, in the daemon's,
 * has.  `host` (and `none` for IPC): nothing to join. */
static int
join_namespace (const char *path, int type, const char *name, struct mc_error *err)
{
  if (path == NULL || path[0] != '/')
    return 0;
  cleanup_fd int fd = open (path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return mc_error_set (err, errno, "open `%s`", path);
  if (setns (fd, type) < 0)
    return mc_error_set (err, errno, "setns %s `%s`", name, path);
  return 0;
}

/* The namespaces the clone makes: all but those the config shares (`host` or a path). */
static unsigned long
clone_flags (const struct mc_config *cfg)
{
  unsigned long flags = CLONE_NEWNS;

  if (cfg->netns == NULL)
    flags |= CLONE_NEWNET;
  if (cfg->pidns == NULL)
    flags |= CLONE_NEWPID;
  if (cfg->ipcns == NULL || strcmp (cfg->ipcns, "none") == 0)
    flags |= CLONE_NEWIPC;
  if (cfg->utsns == NULL)
    flags |= CLONE_NEWUTS;
  if (new_user_namespace (cfg))
    flags |= CLONE_NEWUSER;
  return flags;
}

int
mc_container_spawn (const struct mc_config *cfg, const struct mc_stdio *stdio,
                    struct mc_container *c, struct mc_error *err)
{
  unsigned long flags = clone_flags (cfg);
  int sv[2];
  pid_t pid;

  /* The user namespace first: X's other namespaces are then ours to join, and
   * those the clone makes are owned by it (a procfs of X's PID namespace may
   * only be mounted from X's user namespace). */
  if (join_namespace (cfg->userns_join, CLONE_NEWUSER, "user", err) < 0
      || join_namespace (cfg->netns, CLONE_NEWNET, "net", err) < 0
      || join_namespace (cfg->pidns, CLONE_NEWPID, "pid", err) < 0
      || join_namespace (cfg->ipcns, CLONE_NEWIPC, "ipc", err) < 0)
    return -1;

  c->pty_master = -1;
  if (!cfg->tty && (stdio->in < 3 || stdio->out < 3 || stdio->err < 3))
    return mc_error_set (err, EINVAL, "spawn: stdio fds must be above 2");
  if (socketpair (AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
    return mc_error_set (err, errno, "socketpair");
  cleanup_fd int parent_end = sv[0];
  cleanup_fd int child_end = sv[1];
  cleanup_fd int pty_master = -1;
  pid = mc_clone (flags, err);
  if (pid < 0)
    return -1;
  if (pid == 0)
    {
      close (mc_steal_fd (&parent_end));
      child_main (cfg, stdio, mc_steal_fd (&child_end));
    }
  close (mc_steal_fd (&child_end));
  if (c->on_cloned != NULL)
    c->on_cloned (pid, c->on_cloned_arg);
  if (configure_child (cfg, pid, parent_end, &pty_master, err) < 0)
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

int
mc_container_release (struct mc_container *c, struct mc_error *err)
{
  cleanup_fd int fd = mc_steal_fd (&c->sync_fd);
  enum mc_sync_type type;
  int ret;

  if (mc_sync_send (fd, MC_SYNC_RELEASE, NULL, err) < 0)
    return -1;
  ret = mc_sync_recv (fd, &type, err, err);
  if (ret < 0)
    return -1;
  if (ret == 1 && type == MC_SYNC_ERROR)
    return -1;
  if (ret == 1)
    return mc_error_set (err, EPROTO, "sync: unexpected message %#x after release", type);
  return 0; /* EOF: the O_CLOEXEC end went away in a successful execve */
}

static const char *
env_path (const char *const envp[])
{
  for (size_t i = 0; envp[i] != NULL; i++)
    if (strncmp (envp[i], "PATH=", 5) == 0)
      return envp[i] + 5;
  return MC_DEFAULT_PATH;
}

void
mc_exec_path (const char *const argv[], const char *const envp[], struct mc_error *err)
{
  const char *file = argv[0], *dirs = env_path (envp);
  int saved = ENOENT;

  if (strchr (file, '/') != NULL)
    {
      execve (file, (char *const *) argv, (char *const *) envp);
      mc_error_set (err, errno, "exec `%s`", file);
      return;
    }
  while (dirs != NULL)
    {
      const char *colon = strchr (dirs, ':');
      size_t dlen = colon ? (size_t) (colon - dirs) : strlen (dirs);
      char candidate[PATH_MAX];

      /* An empty PATH entry means the current directory, as in execvp. */
      const char *dir = dlen ? dirs : ".";
      if (snprintf (candidate, sizeof candidate, "%.*s/%s", dlen ? (int) dlen : 1, dir, file)
          < (int) sizeof candidate)
        {
          execve (candidate, (char *const *) argv, (char *const *) envp);
          if (errno == EACCES)
            saved = EACCES;
          else if (errno != ENOENT && errno != ENOTDIR && errno != ELOOP && errno != ENAMETOOLONG)
            {
              saved = errno;
              break;
            }
        }
      dirs = colon ? colon + 1 : NULL;
    }
  mc_error_set (err, saved, "exec `%s`", file);
}
