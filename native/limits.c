/* A container's process limits that are not cgroups: rlimits (`--ulimit`,
 * applied to the init and to every exec just before execve), the size of
 * /dev/shm (`--shm-size`), the namespaced sysctls (`--sysctl`) and the OOM
 * score adjustment (`--oom-score-adj`).  The cgroup limits are written by the
 * daemon. */
#include "mc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

/* Docker's --ulimit names (go-units), the kernel's resources. */
static const struct
{
  const char *name;
  int resource;
} rlimit_names[] = {
  { "as", RLIMIT_AS },           { "core", RLIMIT_CORE },     { "cpu", RLIMIT_CPU },
  { "data", RLIMIT_DATA },       { "fsize", RLIMIT_FSIZE },   { "locks", RLIMIT_LOCKS },
  { "memlock", RLIMIT_MEMLOCK }, { "msgqueue", RLIMIT_MSGQUEUE }, { "nice", RLIMIT_NICE },
  { "nofile", RLIMIT_NOFILE },   { "nproc", RLIMIT_NPROC },   { "rss", RLIMIT_RSS },
  { "rtprio", RLIMIT_RTPRIO },   { "rttime", RLIMIT_RTTIME }, { "sigpending", RLIMIT_SIGPENDING },
  { "stack", RLIMIT_STACK },
};

static int
parse_limit (const char *key, const char *s, unsigned long long *out, struct mc_error *err)
{
  char *end = NULL;

  if (strcmp (s, "unlimited") == 0)
    {
      *out = RLIM_INFINITY;
      return 0;
    }
  errno = 0;
  *out = strtoull (s, &end, 10);
  if (errno != 0 || *s == '\0' || *end != '\0' || *s == '-')
    return mc_error_set (err, EINVAL, "config `%s`: bad limit `%s`", key, s);
  return 0;
}

/* `rlimit NAME SOFT HARD`: SOFT and HARD are numbers or `unlimited`. */
int
mc_config_parse_rlimit (struct mc_config *cfg, const char *key, const char *const *f,
                        struct mc_error *err)
{
  struct mc_rlimit r = { .resource = -1 };
  struct mc_rlimit *grown;

  for (size_t i = 0; i < sizeof rlimit_names / sizeof rlimit_names[0]; i++)
    if (strcmp (rlimit_names[i].name, f[0]) == 0)
      r.resource = rlimit_names[i].resource;
  if (r.resource < 0)
    return mc_error_set (err, EINVAL, "config `%s`: unknown resource `%s`", key, f[0]);
  if (parse_limit (key, f[1], &r.soft, err) < 0 || parse_limit (key, f[2], &r.hard, err) < 0)
    return -1;
  if (r.soft > r.hard)
    return mc_error_set (err, EINVAL, "config `%s`: soft limit of `%s` above its hard limit", key,
                         f[0]);
  grown = realloc (cfg->rlimits, (cfg->n_rlimits + 1) * sizeof r);
  if (grown == NULL)
    return mc_error_set (err, ENOMEM, "realloc config");
  grown[cfg->n_rlimits++] = r;
  cfg->rlimits = grown;
  return 0;
}

/* `shm_size BYTES`: the size of the container's /dev/shm tmpfs. */
int
mc_config_parse_shm_size (struct mc_config *cfg, const char *key, const char *const *f,
                          struct mc_error *err)
{
  unsigned long long v;

  if (parse_limit (key, f[0], &v, err) < 0)
    return -1;
  if (v == 0 || v == RLIM_INFINITY)
    return mc_error_set (err, EINVAL, "config `%s`: must be a positive number of bytes", key);
  cfg->shm_size = (unsigned long long) v;
  return 0;
}

/* Before capabilities are dropped: raising a hard limit takes CAP_SYS_RESOURCE
 * (of the initial user namespace: a rootless container can only lower them). */
int
mc_rlimits_apply (const struct mc_config *cfg, struct mc_error *err)
{
  for (size_t i = 0; i < cfg->n_rlimits; i++)
    {
      struct rlimit rl = { .rlim_cur = cfg->rlimits[i].soft, .rlim_max = cfg->rlimits[i].hard };

      if (setrlimit (cfg->rlimits[i].resource, &rl) < 0)
        {
          const char *name = "?";
          for (size_t j = 0; j < sizeof rlimit_names / sizeof rlimit_names[0]; j++)
            if (rlimit_names[j].resource == cfg->rlimits[i].resource)
              name = rlimit_names[j].name;
          return mc_error_set (err, errno, "setrlimit %s", name);
        }
    }
  return 0;
}

/* The mount data of /dev/shm: Docker's default is 64 MiB. */
void
mc_shm_options (const struct mc_config *cfg, char *buf, size_t size)
{
  unsigned long long bytes = cfg->shm_size ? cfg->shm_size : 64ULL << 20;

  snprintf (buf, size, "mode=1777,size=%llu", bytes);
}

/* `sysctl KEY VALUE`: which keys a container may set (those of its own
 * namespaces) is the daemon's business (spec/sysctls.py); here the key must
 * only stay inside /proc/sys. */
int
mc_config_parse_sysctl (struct mc_config *cfg, const char *key, const char *const *f,
                        struct mc_error *err)
{
  struct mc_sysctl s = { f[0], f[1] };
  struct mc_sysctl *grown;

  if (f[0][0] == '\0' || f[0][0] == '.' || strchr (f[0], '/') != NULL || strstr (f[0], "..") != NULL)
    return mc_error_set (err, EINVAL, "config `%s`: bad sysctl name `%s`", key, f[0]);
  grown = realloc (cfg->sysctls, (cfg->n_sysctls + 1) * sizeof s);
  if (grown == NULL)
    return mc_error_set (err, ENOMEM, "realloc config");
  grown[cfg->n_sysctls++] = s;
  cfg->sysctls = grown;
  return 0;
}

/* `oom_score_adj N`: -1000 to 1000, as the kernel takes it. */
int
mc_config_parse_oom_score_adj (struct mc_config *cfg, const char *key, const char *const *f,
                               struct mc_error *err)
{
  char *end = NULL;
  long v;

  errno = 0;
  v = strtol (f[0], &end, 10);
  if (errno != 0 || *f[0] == '\0' || *end != '\0' || v < -1000 || v > 1000)
    return mc_error_set (err, EINVAL, "config `%s`: `%s` is not in [-1000, 1000]", key, f[0]);
  cfg->oom_score_adj = (int) v;
  cfg->has_oom_score_adj = true;
  return 0;
}

static int
write_proc_file (const char *path, const char *value, struct mc_error *err)
{
  cleanup_fd int fd = open (path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
  size_t len = strlen (value);

  if (fd < 0)
    return mc_error_set (err, errno, "open `%s`", path);
  if (write (fd, value, len) != (ssize_t) len)
    return mc_error_set (err, errno ? errno : EIO, "write `%s` to `%s`", value, path);
  return 0;
}

/* runc's way: dots of the name are the directories of /proc/sys. */
int
mc_sysctls_apply (const struct mc_config *cfg, struct mc_error *err)
{
  for (size_t i = 0; i < cfg->n_sysctls; i++)
    {
      char path[512];

      if (snprintf (path, sizeof path, "/proc/sys/%s", cfg->sysctls[i].key) >= (int) sizeof path)
        return mc_error_set (err, ENAMETOOLONG, "sysctl `%s`", cfg->sysctls[i].key);
      for (char *c = path + strlen ("/proc/sys/"); *c; c++)
        if (*c == '.')
          *c = '/';
      if (write_proc_file (path, cfg->sysctls[i].value, err) < 0)
        return -1;
    }
  return 0;
}

/* Lowering the score below the monitor's needs CAP_SYS_RESOURCE (of the
 * initial user namespace: a rootless daemon refuses that before the start). */
int
mc_oom_score_adj_apply (const struct mc_config *cfg, struct mc_error *err)
{
  char value[16];

  if (!cfg->has_oom_score_adj)
    return 0;
  snprintf (value, sizeof value, "%d", cfg->oom_score_adj);
  return write_proc_file ("/proc/self/oom_score_adj", value, err);
}
