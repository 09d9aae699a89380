/* The container's filesystem, built inside its own mount namespace: the
 * overlay root, /proc, /dev, /sys, bind mounts, then pivot_root into it.
 *
 * Every mount target is resolved inside the rootfs with openat2's
 * RESOLVE_IN_ROOT: the image controls the rootfs, and a symlink such as
 * `/dev -> /etc` must not send a mount onto the host's directories.  The
 * mount then goes onto the resolved fd, never onto the path string again.
 */
#include "mc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

enum mc_target_kind
{
  MC_TARGET_DIR,
  MC_TARGET_FILE,
};

static int
open_in_root (int rootfd, const char *path, int flags)
{
  struct open_how how = {
    .flags = (uint64_t) (flags | O_CLOEXEC),
    .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
  };
  return (int) syscall (SYS_openat2, rootfd, path, &how, sizeof how);
}

static int
create_component (int parentfd, const char *name, enum mc_target_kind kind,
                  const char *path, struct mc_error *err)
{
  int ret = kind == MC_TARGET_DIR ? mkdirat (parentfd, name, 0755)
                                  : mknodat (parentfd, name, S_IFREG | 0644, 0);

  if (ret < 0 && errno != EEXIST)
    return mc_error_set (err, errno, "%s `%s`", kind == MC_TARGET_DIR ? "mkdir" : "mknod",
                         path);
  return 0;
}

/* An O_PATH fd on PATH (absolute, inside ROOTFD), creating missing parents as
 * directories and the last component as KIND, like Docker does for mount
 * points that the image lacks. */
static int
resolve_target (int rootfd, const char *path, enum mc_target_kind kind, struct mc_error *err)
{
  char prefix[PATH_MAX];
  cleanup_fd int parent = open_in_root (rootfd, "/", O_PATH | O_DIRECTORY);
  size_t len = strlen (path);

  if (parent < 0)
    return mc_error_set (err, errno, "openat2 `/`");
  if (len >= sizeof prefix)
    return mc_error_set (err, ENAMETOOLONG, "resolve `%s`", path);
  for (size_t i = 0; i < len;)
    {
      size_t start = i, end;
      while (start < len && path[start] == '/')
        start++;
      end = start;
      while (end < len && path[end] != '/')
        end++;
      if (start == end)
        break;
      bool last = end >= len || path[end + strspn (path + end, "/")] == '\0';
      enum mc_target_kind k = last ? kind : MC_TARGET_DIR;
      int flags = O_PATH | (k == MC_TARGET_DIR ? O_DIRECTORY : 0);
      char name[NAME_MAX + 1];

      memcpy (prefix, path, end);
      prefix[end] = '\0';
      snprintf (name, sizeof name, "%.*s", (int) (end - start), path + start);
      int fd = open_in_root (rootfd, prefix, flags);
      if (fd < 0 && errno == ENOENT)
        {
          if (create_component (parent, name, k, prefix, err) < 0)
            return -1;
          fd = open_in_root (rootfd, prefix, flags);
        }
      if (fd < 0)
        return mc_error_set (err, errno, "openat2 `%s` in the rootfs", prefix);
      close (parent);
      parent = fd;
      i = end;
    }
  return mc_steal_fd (&parent);
}

/* mount(2) onto a resolved fd through its /proc/self/fd magic link. */
static int
mount_on_fd (const char *source, int targetfd, const char *fstype, unsigned long flags,
             const char *data, const char *display, struct mc_error *err)
{
  char target[64];

  snprintf (target, sizeof target, "/proc/self/fd/%d", targetfd);
  if (mount (source, target, fstype, flags, data) < 0)
    return mc_error_set (err, errno, "mount %s `%s`", fstype ? fstype : source, display);
  return 0;
}

/* /proc, /dev and /sys of the image must be plain directories (or missing):
 * a symlink such as `/proc -> /etc` would otherwise be followed (inside the
 * rootfs, but onto a directory the kernel's masks and checks do not expect:
 * CVE-2019-19921's class), so the start is refused, as runc does. */
static int
check_plain_directory (int rootfd, const char *path, const char *fstype, struct mc_error *err)
{
  struct stat st;

  if (fstatat (rootfd, path + 1, &st, AT_SYMLINK_NOFOLLOW) < 0)
    return errno == ENOENT ? 0 : mc_error_set (err, errno, "stat `%s` in the rootfs", path);
  if (S_ISLNK (st.st_mode))
    return mc_error_set (err, ELOOP, "`%s` in the image is a symlink: %s must be mounted on an "
                         "ordinary directory", path, fstype);
  if (!S_ISDIR (st.st_mode))
    return mc_error_set (err, ENOTDIR, "`%s` in the image is not a directory: %s must be "
                         "mounted on an ordinary directory", path, fstype);
  return 0;
}

static int
mount_fs (int rootfd, const char *path, const char *fstype, unsigned long flags,
          const char *data, struct mc_error *err)
{
  if (check_plain_directory (rootfd, path, fstype, err) < 0)
    return -1;
  cleanup_fd int fd = resolve_target (rootfd, path, MC_TARGET_DIR, err);

  if (fd < 0)
    return -1;
  return mount_on_fd (fstype, fd, fstype, flags, data, path, err);
}

/* Bind SOURCE (a host path) onto TARGETFD with the new mount API: no path
 * string is looked up again after the target was resolved. */
static int
bind_on_fd (const char *source, int targetfd, bool recursive, bool readonly,
            const char *display, struct mc_error *err)
{
  unsigned int rec = recursive ? AT_RECURSIVE : 0;
  cleanup_fd int tree = open_tree (AT_FDCWD, source, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | rec);
  struct mount_attr attr = { .attr_set = MOUNT_ATTR_RDONLY };

  if (tree < 0)
    return mc_error_set (err, errno, "open_tree `%s`", source);
  if (readonly && mount_setattr (tree, "", AT_EMPTY_PATH | rec, &attr, sizeof attr) < 0)
    return mc_error_set (err, errno, "mount_setattr ro `%s`", display);
  if (move_mount (tree, "", targetfd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
    return mc_error_set (err, errno, "move_mount `%s` to `%s`", source, display);
  return 0;
}

/* mount(2) with relative lowerdirs resolved from LOWER_DIR: a forked child
 * changes its own working directory, so the caller's (a daemon's threads
 * share theirs) never moves.  The child shares our mount namespace. */
static int
mount_overlay_from (const char *lower_dir, const char *target, const char *opts)
{
  int status = 0;
  pid_t pid = fork ();

  if (pid < 0)
    return -1;
  if (pid == 0)
    {
      if (chdir (lower_dir) < 0 || mount ("overlay", target, "overlay", 0, opts) < 0)
        _exit (errno & 0xff);
      _exit (0);
    }
  while (waitpid (pid, &status, 0) < 0)
    if (errno != EINTR)
      return -1;
  if (!WIFEXITED (status))
    {
      errno = EINTR;
      return -1;
    }
  errno = WEXITSTATUS (status);
  return errno == 0 ? 0 : -1;
}

/* The overlay of a container's image layers (LOWERS, top-most first) and its
 * upper dir on TARGET.  Rootless (USERXATTR), overlayfs keeps its whiteouts and
 * opaque marks in user.overlay.* xattrs: a user namespace cannot set trusted.*.
 * With LOWER_DIR, LOWERS are short names relative to it (the store's image/l
 * links, as Docker's overlay2 does): the kernel takes one page of options, and
 * 120 absolute layer paths would not fit in it. */
static int
overlay_mount (const char *target, const char *lower_dir, const char *const *lowers,
               size_t n_lowers, const char *upper, const char *work, bool userxattr,
               struct mc_error *err)
{
  char opts[4096];
  size_t used = (size_t) snprintf (opts, sizeof opts, "lowerdir=");
  int ret;

  for (size_t i = 0; i < n_lowers && used < sizeof opts; i++)
    used += (size_t) snprintf (opts + used, sizeof opts - used, "%s%s", i ? ":" : "", lowers[i]);
  if (used < sizeof opts)
    used += (size_t) snprintf (opts + used, sizeof opts - used, ",upperdir=%s,workdir=%s%s",
                               upper, work, userxattr ? ",userxattr" : "");
  /* The kernel takes at most one page of options. */
  if (used >= sizeof opts)
    return mc_error_set (err, E2BIG, "mount overlay `%s`: options too long (%zu layers)", target,
                         n_lowers);
  ret = lower_dir != NULL ? mount_overlay_from (lower_dir, target, opts)
                          : mount ("overlay", target, "overlay", 0, opts);
  if (ret < 0)
    return mc_error_set (err, errno, "mount overlay `%s`", target);
  return 0;
}

/* A root the daemon prepared (`rootfs_ready`: a copy of the layers, or a
 * fuse-overlayfs mount): bound onto itself, since pivot_root wants a mount. */
static int
bind_rootfs (const struct mc_config *cfg, struct mc_error *err)
{
  if (mount (cfg->rootfs, cfg->rootfs, NULL, MS_BIND | MS_REC, NULL) < 0)
    return mc_error_set (err, errno, "bind `%s` onto itself", cfg->rootfs);
  return 0;
}

static int
mount_overlay (const struct mc_config *cfg, struct mc_error *err)
{
  if (cfg->rootfs_ready)
    return bind_rootfs (cfg, err);
  return overlay_mount (cfg->rootfs, cfg->lower_dir, cfg->lowers, cfg->n_lowers, cfg->upper,
                        cfg->work, cfg->userns, err);
}

struct mc_dev_node
{
  const char *name;
  unsigned int major, minor;
};

static const struct mc_dev_node dev_nodes[] = {
  { "null", 1, 3 }, { "zero", 1, 5 },    { "full", 1, 7 },
  { "random", 1, 8 }, { "urandom", 1, 9 }, { "tty", 5, 0 },
};

/* A user namespace may not make device nodes: the host's node HOST is bound
 * onto an empty file NAME of DIRFD instead (DISPLAY: its path in the
 * container), as rootless Podman does. */
static int
bind_host_node (int dirfd, const char *name, const char *host, const char *display,
                struct mc_error *err)
{
  cleanup_fd int fd = -1;

  if (mknodat (dirfd, name, S_IFREG | 0644, 0) < 0)
    return mc_error_set (err, errno, "mknod `%s`", display);
  fd = openat (dirfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    return mc_error_set (err, errno, "open `%s`", display);
  return bind_on_fd (host, fd, false, false, display, err);
}

static int
make_dev_node (int devfd, const struct mc_dev_node *node, bool userns, struct mc_error *err)
{
  char host[64];

  if (!userns)
    {
      if (mknodat (devfd, node->name, S_IFCHR | 0666, makedev (node->major, node->minor)) < 0)
        return mc_error_set (err, errno, "mknod `/dev/%s`", node->name);
      if (fchmodat (devfd, node->name, 0666, 0) < 0) /* undo the umask */
        return mc_error_set (err, errno, "chmod `/dev/%s`", node->name);
      return 0;
    }
  snprintf (host, sizeof host, "/dev/%s", node->name);
  return bind_host_node (devfd, node->name, host, host, err);
}

static int
make_dev_links (int devfd, struct mc_error *err)
{
  static const char *const links[][2] = {
    { "fd", "/proc/self/fd" },          { "stdin", "/proc/self/fd/0" },
    { "stdout", "/proc/self/fd/1" },    { "stderr", "/proc/self/fd/2" },
    { "ptmx", "pts/ptmx" },
  };
  for (size_t i = 0; i < sizeof links / sizeof links[0]; i++)
    if (symlinkat (links[i][1], devfd, links[i][0]) < 0)
      return mc_error_set (err, errno, "symlink `/dev/%s`", links[i][0]);
  return 0;
}

static int
mount_dev_subdir (int devfd, const char *name, const char *fstype, unsigned long flags,
                  const char *data, struct mc_error *err)
{
  char display[64];
  cleanup_fd int fd = -1;

  snprintf (display, sizeof display, "/dev/%s", name);
  if (mkdirat (devfd, name, 0755) < 0)
    return mc_error_set (err, errno, "mkdir `%s`", display);
  fd = openat (devfd, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    return mc_error_set (err, errno, "open `%s`", display);
  return mount_on_fd (fstype, fd, fstype, flags, data, display, err);
}

/* The container's own devpts instance, its ptys in group tty (5) as in
 * Docker.  A user namespace that does not map gid 5 makes the kernel refuse
 * gid=5 with EINVAL: then without it, as crun does. */
static int
mount_devpts (int devfd, struct mc_error *err)
{
  cleanup_fd int fd = -1;

  if (mkdirat (devfd, "pts", 0755) < 0)
    return mc_error_set (err, errno, "mkdir `/dev/pts`");
  fd = openat (devfd, "pts", O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    return mc_error_set (err, errno, "open `/dev/pts`");
  if (mount_on_fd ("devpts", fd, "devpts", MS_NOSUID | MS_NOEXEC,
                   "newinstance,ptmxmode=0666,mode=0620,gid=5", "/dev/pts", err) == 0)
    return 0;
  if (err->errnum != EINVAL)
    return -1;
  return mount_on_fd ("devpts", fd, "devpts", MS_NOSUID | MS_NOEXEC,
                      "newinstance,ptmxmode=0666,mode=0620", "/dev/pts", err);
}

/* --privileged: every device node of the host's /dev (HOST, a directory
 * under it at DEPTH), as Docker gives them, skipping what runc skips (the
 * container's own pts, shm, mqueue; console) and names the container already
 * has.  As root they are made with mknod; in a user namespace, which may not
 * make devices, the host's nodes are bind-mounted (rootless Podman). */
static int
add_host_devices (int devfd, const char *host, bool userns, int depth, struct mc_error *err)
{
  static const char *const skipped[] = { "pts", "shm", "mqueue", "fd", "console", ".lxc", ".udev" };
  char path[PATH_MAX];
  DIR *dir = opendir (host);
  struct dirent *e;
  int ret = 0;

  if (dir == NULL)
    return mc_error_set (err, errno, "opendir `%s`", host);
  while (ret == 0 && (e = readdir (dir)) != NULL)
    {
      struct stat st;
      bool skip = e->d_name[0] == '.' && (e->d_name[1] == '\0' || strcmp (e->d_name, "..") == 0);

      for (size_t i = 0; depth == 0 && i < sizeof skipped / sizeof skipped[0]; i++)
        skip = skip || strcmp (e->d_name, skipped[i]) == 0;
      if (skip || snprintf (path, sizeof path, "%s/%s", host, e->d_name) >= (int) sizeof path
          || lstat (path, &st) < 0)
        continue;
      const char *rel = path + strlen ("/dev/");
      if (S_ISDIR (st.st_mode) && depth < 3)
        {
          if (mkdirat (devfd, rel, 0755) < 0 && errno != EEXIST)
            ret = mc_error_set (err, errno, "mkdir `%s` in the container", path);
          else
            ret = add_host_devices (devfd, path, userns, depth + 1, err);
          unlinkat (devfd, rel, AT_REMOVEDIR); /* only if it got nothing (by-id: links only) */
        }
      else if ((S_ISCHR (st.st_mode) || S_ISBLK (st.st_mode)) && !userns)
        {
          if (mknodat (devfd, rel, st.st_mode, st.st_rdev) == 0)
            {
              fchmodat (devfd, rel, st.st_mode & 07777, 0);
              fchownat (devfd, rel, st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW);
            }
          else if (errno != EEXIST)
            ret = mc_error_set (err, errno, "mknod `%s` in the container", path);
        }
      else if (S_ISCHR (st.st_mode) || S_ISBLK (st.st_mode))
        {
          if (mknodat (devfd, rel, S_IFREG | 0644, 0) < 0)
            continue; /* the container has it already */
          cleanup_fd int fd = openat (devfd, rel, O_PATH | O_NOFOLLOW | O_CLOEXEC);
          if (fd < 0 || bind_on_fd (path, fd, false, false, path, err) < 0)
            {
              /* a node the user may not open (e.g. the host's disks) stays out */
              unlinkat (devfd, rel, 0);
            }
        }
    }
  closedir (dir);
  return ret;
}

/* Whatever NAME of DIRFD is, gone; a mount point (in a user namespace the
 * standard nodes are the host's, bound: `--device /dev/zero`) detached first,
 * from this container's own mount namespace. */
static int
remove_for_device (int dirfd, const char *name, const char *display, struct mc_error *err)
{
  char proc[64];

  if (unlinkat (dirfd, name, 0) == 0 || errno == ENOENT)
    return 0;
  if (errno != EBUSY)
    return mc_error_set (err, errno, "unlink `%s` for the device", display);
  cleanup_fd int fd = openat (dirfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    return mc_error_set (err, errno, "open `%s`", display);
  snprintf (proc, sizeof proc, "/proc/self/fd/%d", fd);
  if (umount2 (proc, MNT_DETACH) < 0)
    return mc_error_set (err, errno, "umount2 `%s` for the device", display);
  if (unlinkat (dirfd, name, 0) < 0)
    return mc_error_set (err, errno, "unlink `%s` for the device", display);
  return 0;
}

/* A --device node (`device HOST PATH`): made at PATH with the host node's
 * type, numbers, mode and owner, as runc does (the device controller, set by
 * the daemon, then decides what may be done with it); in a user namespace the
 * host's node bound there.  Whatever PATH held (a node of the image, one of
 * the standard nodes: `--device /dev/null`) is replaced; PATH's parents are
 * resolved inside the rootfs and made when missing. */
static int
make_device (int rootfd, const struct mc_device *dev, bool userns, struct mc_error *err)
{
  const char *name = strrchr (dev->path, '/') + 1;
  char parent[PATH_MAX];
  cleanup_fd int dirfd = -1;
  struct stat st;

  if (stat (dev->host, &st) < 0)
    return mc_error_set (err, errno, "stat device `%s`", dev->host);
  if (!S_ISCHR (st.st_mode) && !S_ISBLK (st.st_mode))
    return mc_error_set (err, ENODEV, "`%s` is not a device node", dev->host);
  snprintf (parent, sizeof parent, "%.*s", (int) (name - dev->path), dev->path);
  dirfd = resolve_target (rootfd, parent, MC_TARGET_DIR, err);
  if (dirfd < 0)
    return -1;
  if (remove_for_device (dirfd, name, dev->path, err) < 0)
    return -1;
  if (userns)
    return bind_host_node (dirfd, name, dev->host, dev->path, err);
  /* The mode is set by mknod itself (umask 0), not by a chmod after it, which
   * follows symlinks: PATH may be in a volume that a running container can
   * swap for a link to a host file meanwhile.  chown does not follow. */
  mode_t umask_was = umask (0);
  int made = mknodat (dirfd, name, st.st_mode, st.st_rdev);
  umask (umask_was);
  if (made < 0)
    return mc_error_set (err, errno, "mknod `%s`", dev->path);
  if (fchownat (dirfd, name, st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW) < 0)
    return mc_error_set (err, errno, "chown `%s`", dev->path);
  return 0;
}

static int
make_devices (int rootfd, const struct mc_config *cfg, struct mc_error *err)
{
  for (size_t i = 0; i < cfg->n_devices; i++)
    if (make_device (rootfd, &cfg->devices[i], cfg->userns, err) < 0)
      return -1;
  return 0;
}

/* /dev/shm as Docker makes it for the IPC mode: the container's own tmpfs;
 * `ipcns host`: the host's /dev/shm bound; `ipcns none`: none at all. */
static int
mount_shm (int devfd, const struct mc_config *cfg, const char *options, struct mc_error *err)
{
  cleanup_fd int fd = -1;

  if (cfg->ipcns != NULL && strcmp (cfg->ipcns, "none") == 0)
    return 0;
  if (cfg->ipcns == NULL || strcmp (cfg->ipcns, "host") != 0)
    return mount_dev_subdir (devfd, "shm", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, options, err);
  if (mkdirat (devfd, "shm", 0755) < 0)
    return mc_error_set (err, errno, "mkdir `/dev/shm`");
  fd = openat (devfd, "shm", O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    return mc_error_set (err, errno, "open `/dev/shm`");
  return bind_on_fd ("/dev/shm", fd, true, false, "/dev/shm", err);
}

static int
mount_dev (int rootfd, const struct mc_config *cfg, struct mc_error *err)
{
  bool userns = cfg->userns;
  char shm_options[64];
  cleanup_fd int target = -1;
  cleanup_fd int devfd = -1;

  if (check_plain_directory (rootfd, "/dev", "tmpfs", err) < 0)
    return -1;
  target = resolve_target (rootfd, "/dev", MC_TARGET_DIR, err);
  if (target < 0)
    return -1;
  if (mount_on_fd ("tmpfs", target, "tmpfs", MS_NOSUID | MS_STRICTATIME,
                   "mode=755,size=65536k", "/dev", err) < 0)
    return -1;
  /* TARGET still names the directory under the new tmpfs: look it up again. */
  devfd = open_in_root (rootfd, "/dev", O_RDONLY | O_DIRECTORY);
  if (devfd < 0)
    return mc_error_set (err, errno, "open `/dev`");
  for (size_t i = 0; i < sizeof dev_nodes / sizeof dev_nodes[0]; i++)
    if (make_dev_node (devfd, &dev_nodes[i], userns, err) < 0)
      return -1;
  if (make_dev_links (devfd, err) < 0)
    return -1;
  if (mount_devpts (devfd, err) < 0)
    return -1;
  mc_shm_options (cfg, shm_options, sizeof shm_options);
  if (mount_shm (devfd, cfg, shm_options, err) < 0)
    return -1;
  if (mount_dev_subdir (devfd, "mqueue", "mqueue", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL, err)
      < 0)
    {
      /* A shared IPC namespace of a user namespace not ours (`--ipc host` rootless): its
       * queues are not ours to mount; the container goes without /dev/mqueue. */
      if (!(userns && cfg->ipcns != NULL && (err->errnum == EPERM || err->errnum == EACCES)))
        return -1;
      err->errnum = 0;
    }
  return cfg->privileged ? add_host_devices (devfd, "/dev", userns, 0, err) : 0;
}

/* /sys/fs/cgroup as Docker shows it; the container's cgroup namespace makes
 * its own groups the roots.  cgroup2 goes on /sys/fs/cgroup itself; v1 gets
 * a tmpfs there with one mount per hierarchy (and a symlink per controller of
 * a co-mounted one: `cpu -> cpu,cpuacct`), the tmpfs then made read-only.
 * Read-only unless --privileged. */
static int
mount_cgroupfs (int rootfd, const struct mc_config *cfg, struct mc_error *err)
{
  unsigned long flags = MS_NOSUID | MS_NOEXEC | MS_NODEV | (cfg->privileged ? 0 : MS_RDONLY);
  cleanup_fd int target = -1;
  cleanup_fd int dirfd = -1;
  char self[64];

  if (cfg->n_cgroupfs == 0)
    return 0;
  target = open_in_root (rootfd, "/sys/fs/cgroup", O_PATH | O_DIRECTORY);
  if (target < 0)
    return mc_error_set (err, errno, "openat2 `/sys/fs/cgroup` in the rootfs");
  if (cfg->n_cgroupfs == 1 && cfg->cgroupfs[0].name == NULL)
    return mount_on_fd ("cgroup2", target, "cgroup2", flags, NULL, "/sys/fs/cgroup", err);
  if (mount_on_fd ("tmpfs", target, "tmpfs", MS_NOSUID | MS_NOEXEC | MS_NODEV, "mode=755,size=64k",
                   "/sys/fs/cgroup", err) < 0)
    return -1;
  dirfd = open_in_root (rootfd, "/sys/fs/cgroup", O_RDONLY | O_DIRECTORY);
  if (dirfd < 0)
    return mc_error_set (err, errno, "open `/sys/fs/cgroup`");
  for (size_t i = 0; i < cfg->n_cgroupfs; i++)
    {
      const struct mc_cgroupfs *fs = &cfg->cgroupfs[i];
      char display[PATH_MAX];
      cleanup_fd int fd = -1;

      if (fs->name == NULL)
        continue;
      snprintf (display, sizeof display, "/sys/fs/cgroup/%s", fs->name);
      if (mkdirat (dirfd, fs->name, 0755) < 0)
        return mc_error_set (err, errno, "mkdir `%s`", display);
      fd = openat (dirfd, fs->name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (fd < 0)
        return mc_error_set (err, errno, "open `%s`", display);
      if (mount_on_fd (fs->fstype, fd, fs->fstype, flags, fs->options, display, err) < 0)
        return -1;
      for (const char *part = fs->name; strchr (fs->name, ',') != NULL && *part != '\0';)
        {
          size_t len = strcspn (part, ",");
          char link[NAME_MAX + 1];

          snprintf (link, sizeof link, "%.*s", (int) len, part);
          if (symlinkat (fs->name, dirfd, link) < 0 && errno != EEXIST)
            return mc_error_set (err, errno, "symlink `/sys/fs/cgroup/%s`", link);
          part += len + (part[len] == ',');
        }
    }
  if (cfg->privileged)
    return 0;
  snprintf (self, sizeof self, "/proc/self/fd/%d", dirfd);
  if (mount (NULL, self, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NOEXEC | MS_NODEV,
             NULL) < 0)
    return mc_error_set (err, errno, "remount `/sys/fs/cgroup` read-only");
  return 0;
}

/* Read-only, as Docker; --privileged: read-write, as Docker. */
static int
mount_sys (int rootfd, const struct mc_config *cfg, struct mc_error *err)
{
  bool userns = cfg->userns, privileged = cfg->privileged;
  unsigned long ro = privileged ? 0 : MS_RDONLY;
  cleanup_fd int fd = -1;

  if (check_plain_directory (rootfd, "/sys", "sysfs", err) < 0)
    return -1;
  fd = resolve_target (rootfd, "/sys", MC_TARGET_DIR, err);
  if (fd < 0)
    return -1;
  if (mount_on_fd ("sysfs", fd, "sysfs", ro | MS_NOSUID | MS_NOEXEC | MS_NODEV, NULL, "/sys", err)
      == 0)
    return mount_cgroupfs (rootfd, cfg, err);
  /* sysfs refuses a user namespace that does not own the network namespace
   * of the mounter in some set-ups; a read-only view of the host's is what
   * rootless Podman falls back to as well. */
  if (!userns || (err->errnum != EPERM && err->errnum != EACCES))
    return -1;
  return bind_on_fd ("/sys", fd, true, !privileged, "/sys", err);
}

/* `tmpfs DEST OPTIONS`: the flag words of OPTIONS become mount flags, the
 * rest (size=, mode=, uid=, gid=, nr_inodes=) the tmpfs's data. */
static int
mount_tmpfs (int rootfd, const struct mc_bind *b, struct mc_error *err)
{
  static const struct { const char *word; unsigned long flag; } words[] = {
    { "nosuid", MS_NOSUID }, { "nodev", MS_NODEV }, { "noexec", MS_NOEXEC },
    { "ro", MS_RDONLY },     { "rw", 0 },           { "suid", 0 },
    { "dev", 0 },            { "exec", 0 },
  };
  char copy[1024], data[1024] = "";
  unsigned long flags = 0;
  char *save = NULL;
  cleanup_fd int fd = -1;

  if (snprintf (copy, sizeof copy, "%s", strcmp (b->tmpfs_options, "-") == 0 ? "" : b->tmpfs_options)
      >= (int) sizeof copy)
    return mc_error_set (err, E2BIG, "tmpfs `%s`: options too long", b->destination);
  for (char *w = strtok_r (copy, ",", &save); w; w = strtok_r (NULL, ",", &save))
    {
      size_t k = 0, n = sizeof words / sizeof words[0];
      while (k < n && strcmp (words[k].word, w) != 0)
        k++;
      if (k < n)
        flags |= words[k].flag;
      else
        snprintf (data + strlen (data), sizeof data - strlen (data), "%s%s", data[0] ? "," : "", w);
    }
  fd = resolve_target (rootfd, b->destination, MC_TARGET_DIR, err);
  if (fd < 0)
    return -1;
  return mount_on_fd ("tmpfs", fd, "tmpfs", flags, data[0] ? data : NULL, b->destination, err);
}

static int
mount_binds (const struct mc_config *cfg, int rootfd, struct mc_error *err)
{
  for (size_t i = 0; i < cfg->n_binds; i++)
    {
      const struct mc_bind *b = &cfg->binds[i];
      struct stat st;
      cleanup_fd int fd = -1;

      if (b->tmpfs_options != NULL)
        {
          if (mount_tmpfs (rootfd, b, err) < 0)
            return -1;
          continue;
        }
      if (stat (b->source, &st) < 0)
        return mc_error_set (err, errno, "stat bind source `%s`", b->source);
      fd = resolve_target (rootfd, b->destination,
                           S_ISDIR (st.st_mode) ? MC_TARGET_DIR : MC_TARGET_FILE, err);
      if (fd < 0)
        return -1;
      if (bind_on_fd (b->source, fd, true, b->readonly, b->destination, err) < 0)
        return -1;
    }
  return 0;
}

/* --read-only: only the overlay's own mount becomes read-only (no
 * AT_RECURSIVE), so /proc, /dev, tmpfs mounts and volumes on top of it stay
 * writable.  The fd is opened after the overlay was mounted on ROOTFS, so it
 * names the overlay's root, the mount that mount_setattr changes. */
static int
remount_root_readonly (const struct mc_config *cfg, struct mc_error *err)
{
  struct mount_attr attr = { .attr_set = MOUNT_ATTR_RDONLY };
  cleanup_fd int fd = open (cfg->rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);

  if (fd < 0)
    return mc_error_set (err, errno, "open `%s`", cfg->rootfs);
  if (mount_setattr (fd, "", AT_EMPTY_PATH, &attr, sizeof attr) < 0)
    return mc_error_set (err, errno, "mount_setattr ro `%s`", cfg->rootfs);
  return 0;
}

/* A masked path (Docker's MaskedPaths): a file gets /dev/null bound on it, a
 * directory an empty read-only tmpfs, so both read empty.  Done after
 * pivot_root, on the container's own /proc and /sys, resolved inside the
 * container; a path this kernel lacks is skipped, as runc does.  Without
 * CAP_SYS_ADMIN the container cannot unmount them. */
static int
mask_path (int rootfd, const char *path, struct mc_error *err)
{
  cleanup_fd int fd = open_in_root (rootfd, path, O_PATH);
  struct stat st;

  if (fd < 0 && (errno == ENOENT || errno == ENOTDIR))
    return 0;
  if (fd < 0)
    return mc_error_set (err, errno, "openat2 `%s` (masked path)", path);
  if (fstat (fd, &st) < 0)
    return mc_error_set (err, errno, "fstat `%s` (masked path)", path);
  if (S_ISDIR (st.st_mode))
    return mount_on_fd ("tmpfs", fd, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
                        "mode=0555", path, err);
  return bind_on_fd ("/dev/null", fd, false, false, path, err);
}

/* A read-only path (Docker's ReadonlyPaths): bound onto itself, recursively
 * read-only (runc's readonlyPath, with the new mount API on the resolved fd). */
static int
readonly_path (int rootfd, const char *path, struct mc_error *err)
{
  struct mount_attr attr = { .attr_set = MOUNT_ATTR_RDONLY };
  cleanup_fd int fd = open_in_root (rootfd, path, O_PATH);
  cleanup_fd int tree = -1;

  if (fd < 0 && (errno == ENOENT || errno == ENOTDIR))
    return 0;
  if (fd < 0)
    return mc_error_set (err, errno, "openat2 `%s` (read-only path)", path);
  tree = open_tree (fd, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE | AT_EMPTY_PATH);
  if (tree < 0)
    return mc_error_set (err, errno, "open_tree `%s` (read-only path)", path);
  if (mount_setattr (tree, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof attr) < 0)
    return mc_error_set (err, errno, "mount_setattr ro `%s`", path);
  if (move_mount (tree, "", fd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
    return mc_error_set (err, errno, "move_mount `%s` read-only", path);
  return 0;
}

static int
confine_paths (const struct mc_config *cfg, struct mc_error *err)
{
  cleanup_fd int rootfd = open ("/", O_PATH | O_DIRECTORY | O_CLOEXEC);

  if (rootfd < 0)
    return mc_error_set (err, errno, "open `/`");
  for (size_t i = 0; i < cfg->n_readonly_paths; i++)
    if (readonly_path (rootfd, cfg->readonly_paths[i], err) < 0)
      return -1;
  for (size_t i = 0; i < cfg->n_masked_paths; i++)
    if (mask_path (rootfd, cfg->masked_paths[i], err) < 0)
      return -1;
  return 0;
}

/* A new procfs; with `pidns host` in a user namespace (rootless `--pid host`)
 * the kernel refuses one (the host's PID namespace is not ours): the host's
 * /proc bound instead, as rootless Podman does. */
static int
mount_proc (int rootfd, const struct mc_config *cfg, struct mc_error *err)
{
  cleanup_fd int fd = -1;

  if (mount_fs (rootfd, "/proc", "proc", MS_NOSUID | MS_NOEXEC | MS_NODEV, NULL, err) == 0)
    return 0;
  if (!cfg->userns || cfg->pidns == NULL || strcmp (cfg->pidns, "host") != 0
      || (err->errnum != EPERM && err->errnum != EACCES))
    return -1;
  fd = resolve_target (rootfd, "/proc", MC_TARGET_DIR, err);
  if (fd < 0)
    return -1;
  return bind_on_fd ("/proc", fd, true, false, "/proc", err);
}

/* pivot_root(".", ".") stacks the old root on top of the new one; a lazy
 * unmount of "." then drops it (crun's do_pivot; no temporary directory
 * inside the image is needed). */
static int
pivot_into (const char *rootfs, struct mc_error *err)
{
  cleanup_fd int oldroot = open ("/", O_DIRECTORY | O_PATH | O_CLOEXEC);
  cleanup_fd int newroot = open (rootfs, O_DIRECTORY | O_PATH | O_CLOEXEC);

  if (oldroot < 0)
    return mc_error_set (err, errno, "open `/`");
  if (newroot < 0)
    return mc_error_set (err, errno, "open `%s`", rootfs);
  if (fchdir (newroot) < 0)
    return mc_error_set (err, errno, "fchdir `%s`", rootfs);
  if (syscall (SYS_pivot_root, ".", ".") < 0)
    return mc_error_set (err, errno, "pivot_root `%s`", rootfs);
  if (fchdir (oldroot) < 0)
    return mc_error_set (err, errno, "fchdir old root");
  /* Keep the unmount below from propagating to the host's mounts. */
  if (mount (NULL, ".", NULL, MS_SLAVE | MS_REC, NULL) < 0)
    return mc_error_set (err, errno, "mount rslave old root");
  if (umount2 (".", MNT_DETACH) < 0)
    return mc_error_set (err, errno, "umount2 old root");
  if (chdir ("/") < 0)
    return mc_error_set (err, errno, "chdir `/`");
  return 0;
}

int
mc_mounts_setup (const struct mc_config *cfg, struct mc_error *err)
{
  cleanup_fd int rootfd = -1;

  /* Nothing we mount may propagate back to the host's mount namespace. */
  if (mount (NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
    return mc_error_set (err, errno, "mount `/` rprivate");
  if (mount_overlay (cfg, err) < 0)
    return -1;
  rootfd = open (cfg->rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (rootfd < 0)
    return mc_error_set (err, errno, "open `%s`", cfg->rootfs);
  if (mount_proc (rootfd, cfg, err) < 0)
    return -1;
  if (mount_dev (rootfd, cfg, err) < 0
      || mount_sys (rootfd, cfg, err) < 0)
    return -1;
  if (mount_binds (cfg, rootfd, err) < 0)
    return -1;
  /* After every mount, as runc makes them: a --device path under a volume is in the volume. */
  if (make_devices (rootfd, cfg, err) < 0)
    return -1;
  if (cfg->readonly_rootfs && remount_root_readonly (cfg, err) < 0)
    return -1;
  if (pivot_into (cfg->rootfs, err) < 0 || mc_sysctls_apply (cfg, err) < 0)
    return -1;
  return confine_paths (cfg, err);
}

/* ---- for the daemon: a container's files seen from outside it (cp, export) ---- */

int
mc_open_in_root (int rootfd, const char *path, int flags, int *fd, struct mc_error *err)
{
  *fd = open_in_root (rootfd, path, flags);
  if (*fd < 0)
    return mc_error_set (err, errno, "openat2 `%s` in the container", path);
  return 0;
}

int
mc_overlay_mount (const char *target, const char *lower_dir, const char *const lowers[],
                  const char *upper, const char *work, bool userxattr, struct mc_error *err)
{
  size_t n = 0;

  while (lowers[n] != NULL)
    n++;
  return overlay_mount (target, lower_dir, lowers, n, upper, work, userxattr, err);
}

int
mc_unmount (const char *target, struct mc_error *err)
{
  if (umount2 (target, MNT_DETACH | UMOUNT_NOFOLLOW) < 0)
    return mc_error_set (err, errno, "umount2 `%s`", target);
  return 0;
}

/* A container's volume or bind SOURCE (read-only if asked) on DESTINATION
 * inside ROOTFD, the mount point created if the root lacks it, as the start
 * does: for archive operations on a container that is not running, which
 * Docker runs with the container's volumes mounted (its mountVolumes). */
int
mc_bind_mount_in_root (int rootfd, const char *source, const char *destination, bool readonly,
                       struct mc_error *err)
{
  struct stat st;

  if (stat (source, &st) < 0)
    return mc_error_set (err, errno, "stat `%s`", source);
  cleanup_fd int fd = resolve_target (rootfd, destination,
                                      S_ISDIR (st.st_mode) ? MC_TARGET_DIR : MC_TARGET_FILE, err);
  if (fd < 0)
    return -1;
  return bind_on_fd (source, fd, true, readonly, destination, err);
}

/* The root daemon's own mount namespace: the overlays it mounts for cp and
 * export must never show on the host, and vanish with the daemon.  rslave,
 * not rprivate: mounts the host makes later still reach the daemon.  Must run
 * before the process has a second thread (unshare affects the caller only). */
int
mc_mountns_unshare (struct mc_error *err)
{
  if (unshare (CLONE_NEWNS) < 0)
    return mc_error_set (err, errno, "unshare mount namespace");
  if (mount (NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) < 0)
    return mc_error_set (err, errno, "mount `/` rslave");
  return 0;
}
