/* minictr native core: the container set-up that must not run in Python.
 *
 * Everything here returns 0 or -1 and fills a struct mc_error, so that no
 * memory crosses the cffi boundary and every failure names its syscall and
 * path.  See docs/internals.md for the contract with the Python side.
 */
#ifndef MC_H
#define MC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct mc_error
{
  int errnum;
  char msg[512];
};

/* Fill ERR with ERRNUM and "<printf FMT>: <strerror(ERRNUM)>"; returns -1 so
 * that callers can write `return mc_error_set (err, errno, "open `%s`", p);`. */
int mc_error_set (struct mc_error *err, int errnum, const char *fmt, ...)
  __attribute__ ((format (printf, 3, 4)));

/* Scope-bound cleanup, in bubblewrap's style. */
void mc_cleanup_fdp (int *fdp);
void mc_cleanup_freep (void *p);
#define cleanup_fd __attribute__ ((cleanup (mc_cleanup_fdp)))
#define cleanup_free __attribute__ ((cleanup (mc_cleanup_freep)))

static inline int
mc_steal_fd (int *fdp)
{
  int fd = *fdp;
  *fdp = -1;
  return fd;
}

/* ---- config.c: the monitor's configuration file ---- */

struct mc_idmap
{
  unsigned long inside, outside, count;
};

/* A `bind` (SOURCE on DESTINATION) or a `tmpfs` (source NULL, TMPFS_OPTIONS
 * its mount data), mounted in the order the config gives them. */
struct mc_bind
{
  const char *source, *destination;
  const char *tmpfs_options;
  bool readonly;
};

/* A cgroup hierarchy mounted in the container (its cgroup namespace makes
 * the container's own group the root): FSTYPE `cgroup` or `cgroup2`, OPTIONS
 * its mount data (v1: the controllers), NAME the directory under
 * /sys/fs/cgroup (`-`: cgroup2 on /sys/fs/cgroup itself). */
struct mc_cgroupfs
{
  const char *fstype, *options, *name;
};

/* A `device` (--device): the host's node HOST made at PATH in the container. */
struct mc_device
{
  const char *host, *path;
};

struct mc_config
{
  char *data; /* the file; every string below points into it */
  const char *id, *rootfs, *upper, *work, *hostname, *cwd;
  const char *log_path, *exit_path, *attach_path;
  unsigned long long log_max_size; /* 0: the log is never rotated */
  unsigned long log_max_file;      /* files kept, the live one included (default 1) */
  const char **lowers;
  size_t n_lowers;
  const char *lower_dir; /* `lower_dir`: the lowers are names relative to it (image/l) */
  bool rootfs_ready;     /* `rootfs_ready 1`: rootfs is prepared; bound, no overlay */
  bool userns, stdin_pipe;
  bool userns_host; /* `userns_host 1` (rootless --userns host): the monitor's user namespace, no new one */
  bool tty;                           /* the process's stdio is a pty (pty.c) */
  unsigned int tty_rows, tty_cols;    /* its initial size; 0: the kernel's default */
  struct mc_idmap *uidmaps, *gidmaps;
  size_t n_uidmaps, n_gidmaps;
  uid_t uid;
  gid_t gid;
  gid_t *groups;
  size_t n_groups;
  const char **argv; /* NULL-terminated */
  size_t n_args;
  const char **env; /* NULL-terminated */
  size_t n_env;
  const char **cgroups;
  size_t n_cgroups;
  struct mc_bind *binds;
  size_t n_binds;
  pid_t exec_pid; /* > 0: join this process's namespaces instead of creating a container */
  void *seccomp_program; /* `seccomp PATH`: the BPF program (struct sock_filter[]), read at load */
  size_t n_seccomp_insns;
  bool no_new_privs;      /* `no_new_privs 1`: prctl PR_SET_NO_NEW_PRIVS before execve */
  bool readonly_rootfs; /* the overlay root remounted read-only once everything is mounted */
  struct mc_rlimit *rlimits; /* limits.c: `rlimit` keys, set just before execve */
  size_t n_rlimits;
  unsigned long long shm_size; /* bytes of /dev/shm; 0: Docker's 64 MiB */
  struct mc_sysctl *sysctls; /* limits.c: `sysctl` keys, written to the container's /proc/sys */
  size_t n_sysctls;
  bool has_oom_score_adj; /* `oom_score_adj N`: written to /proc/self/oom_score_adj */
  int oom_score_adj;
  uint64_t caps;   /* `caps`: bounding = permitted = effective (container.c); default Docker's 14 */
  bool privileged; /* `privileged 1`: sysfs read-write, the host's devices in /dev (mounts.c) */
  const char **masked_paths; /* `masked_path`: /dev/null or an empty read-only tmpfs on each */
  size_t n_masked_paths;
  const char **readonly_paths; /* `readonly_path`: bind-remounted read-only */
  size_t n_readonly_paths;
  struct mc_cgroupfs *cgroupfs; /* `cgroupfs`: the hierarchies shown under /sys/fs/cgroup */
  size_t n_cgroupfs;
  const char *netns; /* `netns`: `host` (no new network namespace) or a netns path to join */
  /* `pidns`, `ipcns`: `host` (the monitor's own), or a path to join (`/proc/PID/ns/pid`); `ipcns
   * none`: a new one without /dev/shm.  `utsns host`, `cgroupns host`: the monitor's own. */
  const char *pidns, *ipcns, *utsns, *cgroupns;
  /* `userns_join PATH` (rootless --pid container:X): X's user namespace, joined by the monitor. */
  const char *userns_join;
  struct mc_device *devices; /* `device`: nodes made once the mounts are done (mounts.c) */
  size_t n_devices;
};

int mc_config_load (struct mc_config *cfg, const char *path, struct mc_error *err);

/* ---- limits.c: rlimits and the size of /dev/shm ---- */

struct mc_rlimit
{
  int resource;
  unsigned long long soft, hard; /* RLIM_INFINITY: unlimited */
};

int mc_config_parse_rlimit (struct mc_config *cfg, const char *key, const char *const *f,
                            struct mc_error *err);
int mc_config_parse_shm_size (struct mc_config *cfg, const char *key, const char *const *f,
                              struct mc_error *err);

struct mc_sysctl
{
  const char *key, *value; /* `net.ipv4.ip_forward`, `1` */
};

int mc_config_parse_sysctl (struct mc_config *cfg, const char *key, const char *const *f,
                            struct mc_error *err);
int mc_config_parse_oom_score_adj (struct mc_config *cfg, const char *key, const char *const *f,
                                   struct mc_error *err);
/* After pivot_root, before /proc/sys is made read-only: the container's own /proc/sys. */
int mc_sysctls_apply (const struct mc_config *cfg, struct mc_error *err);
/* In the child (init or exec), while it still has its capabilities. */
int mc_oom_score_adj_apply (const struct mc_config *cfg, struct mc_error *err);
/* In the child (init or exec) before capabilities are dropped. */
int mc_rlimits_apply (const struct mc_config *cfg, struct mc_error *err);
/* /dev/shm's tmpfs mount data into BUF. */
void mc_shm_options (const struct mc_config *cfg, char *buf, size_t size);
void mc_config_free (struct mc_config *cfg);

/* ---- seccomp.c (the extension only: libseccomp) and seccomp_load.c ---- */

struct mc_seccomp_arg
{
  unsigned int index; /* the syscall's argument, 0-5 */
  int op;             /* enum scmp_compare */
  uint64_t value, value_two; /* SCMP_CMP_MASKED_EQ: mask, then datum */
};

/* One rule: the arguments are ANDed; at most one comparison per argument. */
struct mc_seccomp_rule
{
  const char *name; /* resolved on the native arch; an unknown name is skipped */
  uint32_t action;  /* SCMP_ACT_* */
  unsigned int n_args;
  struct mc_seccomp_arg args[6];
};

/* A filter for the native arch plus ARCHES (libseccomp names, NULL-terminated),
 * exported as classic BPF instructions to OUT_FD. */
int mc_seccomp_compile (uint32_t default_action, const char *const arches[],
                        const struct mc_seccomp_rule *rules, size_t n_rules, int out_fd,
                        struct mc_error *err);
/* NAME gets syscall NR's name on ARCH, or "" when it has none. */
int mc_seccomp_syscall_name (const char *arch, int nr, char *name, size_t size, struct mc_error *err);

/* The monitor: read a compiled program (config key `seccomp`); in the
 * container's process, load it before capabilities are dropped, or, with
 * no_new_privs, set that and load it just before execve. */
int mc_seccomp_read (const char *path, void **program, size_t *n_insns, struct mc_error *err);
int mc_seccomp_apply_early (const struct mc_config *cfg, struct mc_error *err);
int mc_seccomp_apply_late (const struct mc_config *cfg, struct mc_error *err);

/* ---- sync.c: the parent/child protocol over a SOCK_SEQPACKET pair ---- */

enum mc_sync_type
{
  MC_SYNC_IDS_READY = 0x40, /* parent -> child: id maps and cgroups written; carry on. */
  MC_SYNC_CREATED = 0x41,   /* child -> parent: all set up, waiting just before execve. */
  MC_SYNC_RELEASE = 0x42,   /* parent -> child: go and exec. */
  MC_SYNC_ERROR = 0x43,     /* child -> parent: (errnum, msg) of the step that failed. */
  MC_SYNC_PTY_MASTER = 0x44, /* child -> parent: the pty master, as SCM_RIGHTS (cfg->tty only). */
};

int mc_sync_send (int fd, enum mc_sync_type type, const struct mc_error *payload,
                  struct mc_error *err);
/* Receive one message.  Returns 1 on a message, 0 on EOF (the other side
 * closed: after a successful execve, since the child's end is O_CLOEXEC). */
int mc_sync_recv (int fd, enum mc_sync_type *type, struct mc_error *payload,
                  struct mc_error *err);
/* Expect EXPECTED; an MC_SYNC_ERROR is copied into ERR, EOF is EPIPE. */
int mc_sync_expect (int fd, enum mc_sync_type expected, struct mc_error *err);

/* A message carrying one file descriptor (SCM_RIGHTS).  mc_sync_expect_fd
 * stores the received fd (O_CLOEXEC) in *PASSED; an MC_SYNC_ERROR is copied
 * into ERR, EOF is EPIPE, and on any failure *PASSED is -1. */
int mc_sync_send_fd (int fd, enum mc_sync_type type, int passed, struct mc_error *err);
int mc_sync_expect_fd (int fd, enum mc_sync_type expected, int *passed, struct mc_error *err);

/* In a child: report ERR to the parent and exit with STATUS. */
__attribute__ ((noreturn)) void mc_child_fail (int sync_fd, const struct mc_error *err,
                                                 int status);

pid_t mc_clone (unsigned long flags, struct mc_error *err);

/* ---- mounts.c: the container's filesystem, inside its mount namespace ---- */

int mc_mounts_setup (const struct mc_config *cfg, struct mc_error *err);

/* For the daemon (cp, diff, export): a container's files from outside it. */
int mc_open_in_root (int rootfd, const char *path, int flags, int *fd, struct mc_error *err);
int mc_overlay_mount (const char *target, const char *lower_dir, const char *const lowers[],
                      const char *upper, const char *work, bool userxattr, struct mc_error *err);
int mc_unmount (const char *target, struct mc_error *err);
int mc_bind_mount_in_root (int rootfd, const char *source, const char *destination, bool readonly,
                           struct mc_error *err);
int mc_mountns_unshare (struct mc_error *err);

/* ---- forward.c: published ports, socket to socket in a thread per direction (daemon only) ---- */

/* Takes a and b on success; `group` names the container, for shutdown_group. */
int mc_forward_start (int a, int b, long long group, struct mc_error *err);
int mc_forward_shutdown_group (long long group, struct mc_error *err);
int mc_forward_count (long long group);

/* ---- devices.c: cgroup v2's device controller (the daemon; v1 is files) ---- */

/* One allow rule: TYPE 'a' (any), 'b' or 'c'; MAJOR, MINOR a number or -1 for
 * any; ACCESS the bits of BPF_DEVCG_ACC_* (mknod 1, read 2, write 4). */
struct mc_device_rule
{
  char type;
  long long major, minor;
  unsigned int access;
};

/* Attach to the v2 group CGROUP_DIR a BPF program that allows what RULES
 * allow and denies every other device (open and mknod). */
int mc_device_filter_attach (const char *cgroup_dir, const struct mc_device_rule *rules,
                             size_t n_rules, struct mc_error *err);

/* ---- container.c: spawning the container's init ---- */

struct mc_stdio
{
  int in, out, err; /* child ends; the parent keeps its own ends */
};

struct mc_container
{
  pid_t pid;
  int sync_fd; /* parent end of the sync socket */
  int pty_master; /* with cfg->tty: the master of the process's pty, else -1 */
  /* If set: called once the init is cloned, before its set-up, with its pid (its namespaces
   * exist from then on: the daemon sets up its network meanwhile). */
  void (*on_cloned) (pid_t pid, void *arg);
  void *on_cloned_arg;
};

/* Clone the container's init and wait until it is set up and waiting just
 * before execve (MC_SYNC_CREATED). On failure the child is killed and reaped. */
int mc_container_spawn (const struct mc_config *cfg, const struct mc_stdio *stdio,
                        struct mc_container *c, struct mc_error *err);
/* Let the init exec; -1 with the child's error if execve failed.  Closes c->sync_fd. */
int mc_container_release (struct mc_container *c, struct mc_error *err);

/* The steps of a container's init just before execve, shared with exec.c:
 * Docker's default capabilities, the user/group switch (setgroups, setresgid,
 * setresuid), signal dispositions and mask back to defaults, stdio on 0-2 and
 * the sync socket on 3 with every other fd closed, and joining the config's
 * cgroups (PID 0: the caller itself). */
/* Capabilities: MASK (the `caps` key) in the bounding set, ambient empty,
 * before the user switch; mc_caps_set after it: permitted = effective = the
 * bounding set for uid 0 (nothing for another uid), inheritable empty. */
int mc_caps_drop (uint64_t mask, struct mc_error *err);
int mc_caps_set (const struct mc_config *cfg, struct mc_error *err);
/* Docker's default 14 capabilities, mask 0xa80425fb (the `caps` key's default). */
uint64_t mc_caps_default (void);
int mc_user_switch (const struct mc_config *cfg, struct mc_error *err);
void mc_signals_reset (void);
int mc_stdio_arrange (const struct mc_stdio *stdio, int *sync_fd, struct mc_error *err);
int mc_cgroups_join (const struct mc_config *cfg, pid_t pid, struct mc_error *err);
/* pty, capabilities, user, stdio: the last steps before execve (init and exec alike). */
int mc_process_finish (const struct mc_config *cfg, const struct mc_stdio *stdio, int *sync_fd,
                       struct mc_error *err);

/* Execve ARGV[0] looked up in PATH from ENVP, by hand: glibc's execvpe would
 * search the caller's own environ. Returns only on failure, with ERR filled. */
void mc_exec_path (const char *const argv[], const char *const envp[], struct mc_error *err);

/* ---- exec.c: a process in a running container's namespaces (docker exec) ---- */

/* Fork a process into the namespaces and cgroups of cfg->exec_pid, set up as
 * the container's init is (cwd, capabilities, user) and waiting just before
 * execve, as mc_container_spawn leaves the init; release it with
 * mc_container_release.  On failure the child is killed and reaped. */
int mc_exec_spawn (const struct mc_config *cfg, const struct mc_stdio *stdio,
                   struct mc_container *c, struct mc_error *err);

/* ---- pty.c: the process's terminal (run -t, exec -t) ---- */

/* In the child, after pivot_root (the container's /dev/ptmx, its own devpts
 * instance) and before capabilities are dropped: open a new pty, give the
 * slave to OWNER (a uid; 0 leaves it as opened), start a new session with the
 * slave as its controlling terminal and as fds 0-2, and send the master to the
 * parent as MC_SYNC_PTY_MASTER.  The child keeps no master fd. */
int mc_pty_open_child (int sync_fd, uid_t owner, struct mc_error *err);
/* In the parent: receive that master into *MASTER (O_CLOEXEC); -1 with the
 * child's own error if it failed before sending it. */
int mc_pty_recv_master (int sync_fd, int *master, struct mc_error *err);
/* TIOCSWINSZ on a master: the foreground process group gets SIGWINCH. */
int mc_pty_resize (int master, unsigned int rows, unsigned int cols, struct mc_error *err);

/* ---- userns.c: the rootless daemon wrapper's user namespace ---- */

int mc_userns_spawn (char *const argv[], char *const envp[], int *pid, int *sync_fd,
                     struct mc_error *err);
int mc_userns_release (int sync_fd, struct mc_error *err);
int mc_userns_join (int holder_pid, char *const argv[], char *const envp[], int *pid, int *sync_fd,
                    struct mc_error *err);

/* ---- log.c: Docker's json-file log lines ---- */

struct mc_log_stream
{
  const char *name; /* "stdout" or "stderr" */
  char *pending;    /* bytes of a line not yet ended */
  size_t len, cap;
};

/* Append BUF's complete lines to the log (the rest waits in S); a line that cannot be
 * written is dropped and counted, so that S never holds more than one unfinished line.
 * -1 when a line was dropped, with the first error. */
int mc_log_write (int log_fd, struct mc_log_stream *s, const char *buf, size_t len,
                  struct mc_error *err);
/* How many lines the log has lost to failed writes. */
unsigned long long mc_log_dropped (void);
/* Write whatever is pending as a last (unterminated) line. */
int mc_log_flush (int log_fd, struct mc_log_stream *s, struct mc_error *err);
/* Open CFG's log for appending and remember its rotation limits (log_max_size,
 * log_max_file): mc_log_write on the returned fd rotates the files before a
 * line would take the log past log_max_size, keeping the same fd number.
 * Returns the fd, or -1. */
int mc_log_open (const struct mc_config *cfg, struct mc_error *err);

#endif
