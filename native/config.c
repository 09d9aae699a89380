/* The monitor's configuration: NUL-terminated strings, a key then a fixed
 * number of fields (docs/internals.md, "Config file"). */
#include "mc.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct mc_config_key
{
  const char *name;
  int arity;
  int (*parse) (struct mc_config *cfg, const char *key, const char *const *f,
                struct mc_error *err);
};

static int
append (void *arrayp, size_t *n, size_t size, const void *item, struct mc_error *err)
{
  void **array = arrayp;
  char *grown = realloc (*array, (*n + 2) * size);

  if (grown == NULL)
    return mc_error_set (err, ENOMEM, "realloc config");
  memcpy (grown + *n * size, item, size);
  (*n)++;
  memset (grown + *n * size, 0, size); /* keeps string arrays NULL-terminated */
  *array = grown;
  return 0;
}

static int
parse_ulong (const char *key, const char *s, unsigned long *out, struct mc_error *err)
{
  char *end = NULL;

  errno = 0;
  *out = strtoul (s, &end, 10);
  if (errno != 0 || *s == '\0' || *end != '\0' || *s == '-')
    return mc_error_set (err, EINVAL, "config `%s`: bad number `%s`", key, s);
  return 0;
}

static int
parse_bool (const char *key, const char *s, bool *out, struct mc_error *err)
{
  if (strcmp (s, "0") != 0 && strcmp (s, "1") != 0)
    return mc_error_set (err, EINVAL, "config `%s`: expected 0 or 1, got `%s`", key, s);
  *out = s[0] == '1';
  return 0;
}

static const char **
string_slot (struct mc_config *cfg, const char *key)
{
  static const struct { const char *name; size_t offset; } slots[] = {
    { "id", offsetof (struct mc_config, id) },
    { "rootfs", offsetof (struct mc_config, rootfs) },
    { "upper", offsetof (struct mc_config, upper) },
    { "work", offsetof (struct mc_config, work) },
    { "lower_dir", offsetof (struct mc_config, lower_dir) },
    { "hostname", offsetof (struct mc_config, hostname) },
    { "cwd", offsetof (struct mc_config, cwd) },
    { "log", offsetof (struct mc_config, log_path) },
    { "exit", offsetof (struct mc_config, exit_path) },
    { "attach", offsetof (struct mc_config, attach_path) },
    { "netns", offsetof (struct mc_config, netns) },
    { "pidns", offsetof (struct mc_config, pidns) },
    { "ipcns", offsetof (struct mc_config, ipcns) },
    { "utsns", offsetof (struct mc_config, utsns) },
    { "cgroupns", offsetof (struct mc_config, cgroupns) },
    { "userns_join", offsetof (struct mc_config, userns_join) },
  };
  for (size_t i = 0; i < sizeof slots / sizeof slots[0]; i++)
    if (strcmp (slots[i].name, key) == 0)
      return (const char **) ((char *) cfg + slots[i].offset);
  return NULL;
}

static int
parse_string (struct mc_config *cfg, const char *key, const char *const *f,
              struct mc_error *err)
{
  (void) err;
  *string_slot (cfg, key) = f[0];
  return 0;
}

static int
parse_list (struct mc_config *cfg, const char *key, const char *const *f,
            struct mc_error *err)
{
  if (strcmp (key, "lower") == 0)
    return append (&cfg->lowers, &cfg->n_lowers, sizeof (char *), &f[0], err);
  if (strcmp (key, "arg") == 0)
    return append (&cfg->argv, &cfg->n_args, sizeof (char *), &f[0], err);
  if (strcmp (key, "env") == 0)
    return append (&cfg->env, &cfg->n_env, sizeof (char *), &f[0], err);
  if (strcmp (key, "masked_path") == 0)
    return append (&cfg->masked_paths, &cfg->n_masked_paths, sizeof (char *), &f[0], err);
  if (strcmp (key, "readonly_path") == 0)
    return append (&cfg->readonly_paths, &cfg->n_readonly_paths, sizeof (char *), &f[0], err);
  return append (&cfg->cgroups, &cfg->n_cgroups, sizeof (char *), &f[0], err);
}

/* `caps HEX`: the capability mask (bit N = capability N of linux/capability.h). */
static int
parse_caps (struct mc_config *cfg, const char *key, const char *const *f, struct mc_error *err)
{
  char *end = NULL;

  errno = 0;
  cfg->caps = strtoull (f[0], &end, 16);
  if (errno != 0 || f[0][0] == '\0' || *end != '\0' || f[0][0] == '-')
    return mc_error_set (err, EINVAL, "config `%s`: bad hex mask `%s`", key, f[0]);
  return 0;
}

static int
parse_flag (struct mc_config *cfg, const char *key, const char *const *f,
            struct mc_error *err)
{
  bool *flag = strcmp (key, "userns") == 0 ? &cfg->userns
               : strcmp (key, "userns_host") == 0 ? &cfg->userns_host
               : strcmp (key, "tty") == 0  ? &cfg->tty
               : strcmp (key, "readonly_rootfs") == 0 ? &cfg->readonly_rootfs
               : strcmp (key, "no_new_privs") == 0 ? &cfg->no_new_privs
               : strcmp (key, "privileged") == 0 ? &cfg->privileged
               : strcmp (key, "rootfs_ready") == 0 ? &cfg->rootfs_ready
                                           : &cfg->stdin_pipe;

  return parse_bool (key, f[0], flag, err);
}

static int
parse_tty_size (struct mc_config *cfg, const char *key, const char *const *f,
                struct mc_error *err)
{
  unsigned long rows, cols;

  if (parse_ulong (key, f[0], &rows, err) < 0 || parse_ulong (key, f[1], &cols, err) < 0)
    return -1;
  if (rows > 0xffff || cols > 0xffff)
    return mc_error_set (err, EINVAL, "config `%s`: size out of range `%s %s`", key, f[0], f[1]);
  cfg->tty_rows = (unsigned int) rows;
  cfg->tty_cols = (unsigned int) cols;
  return 0;
}

static int
parse_id (struct mc_config *cfg, const char *key, const char *const *f, struct mc_error *err)
{
  unsigned long v;

  if (parse_ulong (key, f[0], &v, err) < 0)
    return -1;
  if (v > UINT_MAX - 1)
    return mc_error_set (err, EINVAL, "config `%s`: id out of range `%s`", key, f[0]);
  if (strcmp (key, "uid") == 0)
    cfg->uid = (uid_t) v;
  else if (strcmp (key, "gid") == 0)
    cfg->gid = (gid_t) v;
  else
    {
      gid_t g = (gid_t) v;
      return append (&cfg->groups, &cfg->n_groups, sizeof g, &g, err);
    }
  return 0;
}

static int
parse_pid (struct mc_config *cfg, const char *key, const char *const *f, struct mc_error *err)
{
  unsigned long v;

  if (parse_ulong (key, f[0], &v, err) < 0)
    return -1;
  if (v == 0 || v > INT_MAX)
    return mc_error_set (err, EINVAL, "config `%s`: pid out of range `%s`", key, f[0]);
  cfg->exec_pid = (pid_t) v;
  return 0;
}

static int
parse_idmap (struct mc_config *cfg, const char *key, const char *const *f,
             struct mc_error *err)
{
  struct mc_idmap m;

  if (parse_ulong (key, f[0], &m.inside, err) < 0 || parse_ulong (key, f[1], &m.outside, err) < 0
      || parse_ulong (key, f[2], &m.count, err) < 0)
    return -1;
  if (strcmp (key, "uidmap") == 0)
    return append (&cfg->uidmaps, &cfg->n_uidmaps, sizeof m, &m, err);
  return append (&cfg->gidmaps, &cfg->n_gidmaps, sizeof m, &m, err);
}

static int
parse_bind (struct mc_config *cfg, const char *key, const char *const *f,
            struct mc_error *err)
{
  struct mc_bind b = { .source = f[0], .destination = f[1] };

  if (strcmp (f[2], "ro") != 0 && strcmp (f[2], "rw") != 0)
    return mc_error_set (err, EINVAL, "config `%s`: expected ro or rw, got `%s`", key, f[2]);
  b.readonly = strcmp (f[2], "ro") == 0;
  if (f[1][0] != '/')
    return mc_error_set (err, EINVAL, "config `%s`: destination `%s` is not absolute", key, f[1]);
  return append (&cfg->binds, &cfg->n_binds, sizeof b, &b, err);
}

/* `tmpfs DEST OPTIONS`: OPTIONS is the mount data (`size=…,mode=…`, or `-` for
 * none) plus the flags nosuid, nodev, noexec, ro, which the daemon passes
 * through as is and mounts.c splits out. */
static int
parse_tmpfs (struct mc_config *cfg, const char *key, const char *const *f,
             struct mc_error *err)
{
  struct mc_bind b = { .destination = f[0], .tmpfs_options = f[1] };

  if (f[0][0] != '/')
    return mc_error_set (err, EINVAL, "config `%s`: destination `%s` is not absolute", key, f[0]);
  return append (&cfg->binds, &cfg->n_binds, sizeof b, &b, err);
}

static int
parse_log_limit (struct mc_config *cfg, const char *key, const char *const *f,
                 struct mc_error *err)
{
  unsigned long v;

  if (parse_ulong (key, f[0], &v, err) < 0)
    return -1;
  if (strcmp (key, "log_max_size") == 0)
    cfg->log_max_size = v;
  else if (v == 0)
    return mc_error_set (err, EINVAL, "config `%s`: must be at least 1", key);
  else
    cfg->log_max_file = v;
  return 0;
}

/* `seccomp PATH`: read now, while the host's paths are still ours. */
static int
parse_seccomp (struct mc_config *cfg, const char *key, const char *const *f,
               struct mc_error *err)
{
  (void) key;
  free (cfg->seccomp_program);
  cfg->seccomp_program = NULL;
  return mc_seccomp_read (f[0], &cfg->seccomp_program, &cfg->n_seccomp_insns, err);
}

static int
parse_cgroupfs (struct mc_config *cfg, const char *key, const char *const *f,
                struct mc_error *err)
{
  /* `-`: no options (a cgroup2 hierarchy beside v1's, mounted for --privileged). */
  struct mc_cgroupfs fs = { f[0], strcmp (f[1], "-") == 0 ? NULL : f[1],
                            strcmp (f[2], "-") == 0 ? NULL : f[2] };

  if (strcmp (fs.fstype, "cgroup") != 0 && strcmp (fs.fstype, "cgroup2") != 0)
    return mc_error_set (err, EINVAL, "config `%s`: not a cgroup filesystem `%s`", key, f[0]);
  if (fs.name != NULL && (strchr (fs.name, '/') != NULL || fs.name[0] == '.'))
    return mc_error_set (err, EINVAL, "config `%s`: bad directory name `%s`", key, f[2]);
  return append (&cfg->cgroupfs, &cfg->n_cgroupfs, sizeof fs, &fs, err);
}

/* `device HOST PATH`: both absolute; PATH names a file (not `/`, `.` or `..`). */
static int
parse_device (struct mc_config *cfg, const char *key, const char *const *f,
              struct mc_error *err)
{
  struct mc_device d = { f[0], f[1] };
  const char *name = strrchr (f[1], '/');

  if (f[0][0] != '/' || f[1][0] != '/')
    return mc_error_set (err, EINVAL, "config `%s`: `%s %s`: paths must be absolute", key, f[0], f[1]);
  if (strcmp (name, "/") == 0 || strcmp (name, "/.") == 0 || strcmp (name, "/..") == 0)
    return mc_error_set (err, EINVAL, "config `%s`: `%s` does not name a file", key, f[1]);
  return append (&cfg->devices, &cfg->n_devices, sizeof d, &d, err);
}

static const struct mc_config_key keys[] = {
  { "id", 1, parse_string },     { "rootfs", 1, parse_string }, { "upper", 1, parse_string },
  { "work", 1, parse_string },   { "hostname", 1, parse_string }, { "cwd", 1, parse_string },
  { "log", 1, parse_string },    { "exit", 1, parse_string },   { "attach", 1, parse_string },
  { "lower", 1, parse_list },    { "arg", 1, parse_list },      { "env", 1, parse_list },
  { "cgroup", 1, parse_list },   { "userns", 1, parse_flag },   { "stdin", 1, parse_flag },
  { "uid", 1, parse_id },        { "gid", 1, parse_id },        { "group", 1, parse_id },
  { "uidmap", 3, parse_idmap },  { "gidmap", 3, parse_idmap },  { "bind", 3, parse_bind },
  { "tty", 1, parse_flag },      { "tty_size", 2, parse_tty_size },
  { "log_max_size", 1, parse_log_limit }, { "log_max_file", 1, parse_log_limit },
  { "exec_pid", 1, parse_pid },
  { "seccomp", 1, parse_seccomp }, { "no_new_privs", 1, parse_flag },
  { "tmpfs", 2, parse_tmpfs },   { "readonly_rootfs", 1, parse_flag },
  { "rlimit", 3, mc_config_parse_rlimit }, { "shm_size", 1, mc_config_parse_shm_size },
  { "sysctl", 2, mc_config_parse_sysctl }, { "oom_score_adj", 1, mc_config_parse_oom_score_adj },
  { "caps", 1, parse_caps },     { "privileged", 1, parse_flag },
  { "masked_path", 1, parse_list }, { "readonly_path", 1, parse_list },
  { "cgroupfs", 3, parse_cgroupfs },
  { "lower_dir", 1, parse_string }, { "rootfs_ready", 1, parse_flag },
  { "netns", 1, parse_string },  { "device", 2, parse_device },
  { "userns_host", 1, parse_flag }, { "pidns", 1, parse_string },  { "ipcns", 1, parse_string },
  { "utsns", 1, parse_string },  { "cgroupns", 1, parse_string },
  { "userns_join", 1, parse_string },
};

static const struct mc_config_key *
find_key (const char *name)
{
  for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
    if (strcmp (keys[i].name, name) == 0)
      return &keys[i];
  return NULL;
}

static int
read_file (const char *path, char **data, size_t *len, struct mc_error *err)
{
  cleanup_fd int fd = open (path, O_RDONLY | O_CLOEXEC);
  cleanup_free char *buf = NULL;
  struct stat st;
  size_t done = 0;

  if (fd < 0)
    return mc_error_set (err, errno, "open `%s`", path);
  if (fstat (fd, &st) < 0)
    return mc_error_set (err, errno, "fstat `%s`", path);
  buf = malloc ((size_t) st.st_size + 1);
  if (buf == NULL)
    return mc_error_set (err, ENOMEM, "read `%s`", path);
  while (done < (size_t) st.st_size)
    {
      ssize_t n = read (fd, buf + done, (size_t) st.st_size - done);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        return mc_error_set (err, errno, "read `%s`", path);
      if (n == 0)
        break;
      done += (size_t) n;
    }
  buf[done] = '\0';
  *len = done;
  *data = buf;
  buf = NULL;
  return 0;
}

static int
check_required (const struct mc_config *cfg, const char *path, struct mc_error *err)
{
  /* An exec joins a running container: its filesystem is already there. */
  if (cfg->exec_pid == 0 && cfg->rootfs == NULL)
    return mc_error_set (err, EINVAL, "config `%s`: rootfs is required", path);
  if (cfg->exec_pid == 0 && !cfg->rootfs_ready
      && (cfg->upper == NULL || cfg->work == NULL || cfg->n_lowers == 0))
    return mc_error_set (err, EINVAL, "config `%s`: rootfs, lower, upper and work are required",
                         path);
  if (cfg->n_args == 0)
    return mc_error_set (err, EINVAL, "config `%s`: no `arg`", path);
  if (cfg->exit_path == NULL || cfg->attach_path == NULL)
    return mc_error_set (err, EINVAL, "config `%s`: exit and attach are required", path);
  return 0;
}

static int
parse_entries (struct mc_config *cfg, const char *path, size_t len, struct mc_error *err)
{
  const char *p = cfg->data, *end = cfg->data + len;

  if (len > 0 && end[-1] != '\0')
    return mc_error_set (err, EINVAL, "config `%s`: not NUL-terminated", path);
  while (p < end)
    {
      const struct mc_config_key *key = find_key (p);
      const char *fields[3];

      if (key == NULL)
        return mc_error_set (err, EINVAL, "config `%s`: unknown key `%s`", path, p);
      p += strlen (p) + 1;
      for (int i = 0; i < key->arity; i++)
        {
          if (p >= end)
            return mc_error_set (err, EINVAL, "config `%s`: key `%s` needs %d fields", path,
                                 key->name, key->arity);
          fields[i] = p;
          p += strlen (p) + 1;
        }
      if (key->parse (cfg, key->name, fields, err) < 0)
        return -1;
    }
  return 0;
}

int
mc_config_load (struct mc_config *cfg, const char *path, struct mc_error *err)
{
  size_t len = 0;

  memset (cfg, 0, sizeof *cfg);
  cfg->cwd = "/";
  cfg->log_max_file = 1;
  cfg->caps = mc_caps_default ();
  if (read_file (path, &cfg->data, &len, err) < 0)
    return -1;
  if (parse_entries (cfg, path, len, err) < 0 || check_required (cfg, path, err) < 0)
    {
      mc_config_free (cfg);
      return -1;
    }
  if (cfg->env == NULL)
    cfg->env = calloc (1, sizeof (char *)); /* an empty, NULL-terminated env */
  if (cfg->env == NULL)
    {
      mc_config_free (cfg);
      return mc_error_set (err, ENOMEM, "config `%s`", path);
    }
  return 0;
}

void
mc_config_free (struct mc_config *cfg)
{
  free (cfg->data);
  free (cfg->rlimits);
  free (cfg->sysctls);
  free (cfg->lowers);
  free (cfg->uidmaps);
  free (cfg->gidmaps);
  free (cfg->groups);
  free (cfg->argv);
  free (cfg->env);
  free (cfg->cgroups);
  free (cfg->binds);
  free (cfg->seccomp_program);
  free (cfg->masked_paths);
  free (cfg->readonly_paths);
  free (cfg->cgroupfs);
  free (cfg->devices);
  memset (cfg, 0, sizeof *cfg);
}
