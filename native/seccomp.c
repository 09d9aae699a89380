/* Compiling a seccomp profile into a BPF program, with libseccomp, in the
 * daemon (the cffi extension only).
 *
 * The monitor is a static binary and does not link libseccomp: the daemon
 * compiles each (profile, capabilities, arch) once, exports the classic BPF
 * program to a file, and the monitor hands that file's instructions to the
 * kernel (seccomp_load.c).  Python has already decided which of the
 * profile's rules apply (capabilities, arch, kernel) and split comparisons
 * on one argument into separate rules; here they are only added.
 */
#include "mc.h"

#include <errno.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int
add_arches (scmp_filter_ctx ctx, const char *const arches[], struct mc_error *err)
{
  for (size_t i = 0; arches != NULL && arches[i] != NULL; i++)
    {
      uint32_t arch = seccomp_arch_resolve_name (arches[i]);
      int ret;

      if (arch == 0)
        continue; /* an arch this libseccomp does not know: Docker skips it too */
      ret = seccomp_arch_add (ctx, arch);
      if (ret < 0 && ret != -EEXIST)
        return mc_error_set (err, -ret, "seccomp_arch_add `%s`", arches[i]);
    }
  return 0;
}

static int
add_rule (scmp_filter_ctx ctx, const struct mc_seccomp_rule *rule, struct mc_error *err)
{
  struct scmp_arg_cmp cmp[6];
  int nr = seccomp_syscall_resolve_name (rule->name);
  int ret;

  if (nr == __NR_SCMP_ERROR)
    return 0; /* unknown to libseccomp: skipped, as moby does */
  if (rule->n_args > 6)
    return mc_error_set (err, EINVAL, "seccomp rule `%s`: %u arguments", rule->name, rule->n_args);
  for (unsigned int i = 0; i < rule->n_args; i++)
    cmp[i] = (struct scmp_arg_cmp){ .arg = rule->args[i].index,
                                    .op = (enum scmp_compare) rule->args[i].op,
                                    .datum_a = rule->args[i].value,
                                    .datum_b = rule->args[i].value_two };
  ret = seccomp_rule_add_array (ctx, rule->action, nr, rule->n_args, cmp);
  if (ret < 0)
    return mc_error_set (err, -ret, "seccomp_rule_add `%s`", rule->name);
  return 0;
}

int
mc_seccomp_compile (uint32_t default_action, const char *const arches[],
                    const struct mc_seccomp_rule *rules, size_t n_rules, int out_fd,
                    struct mc_error *err)
{
  scmp_filter_ctx ctx = seccomp_init (default_action);
  int ret = -1;

  if (ctx == NULL)
    return mc_error_set (err, EINVAL, "seccomp_init: bad default action %#x", default_action);
  /* Only exported, never loaded here; the monitor's child sets no_new_privs
   * itself when asked. */
  seccomp_attr_set (ctx, SCMP_FLTATR_CTL_NNP, 0);
  if (add_arches (ctx, arches, err) < 0)
    goto out;
  for (size_t i = 0; i < n_rules; i++)
    if (add_rule (ctx, &rules[i], err) < 0)
      goto out;
  ret = seccomp_export_bpf (ctx, out_fd);
  if (ret < 0)
    {
      mc_error_set (err, -ret, "seccomp_export_bpf");
      ret = -1;
    }
out:
  seccomp_release (ctx);
  return ret;
}

int
mc_seccomp_syscall_name (const char *arch, int nr, char *name, size_t size, struct mc_error *err)
{
  uint32_t token = seccomp_arch_resolve_name (arch);
  cleanup_free char *found = NULL;

  if (token == 0)
    return mc_error_set (err, EINVAL, "seccomp: unknown arch `%s`", arch);
  found = seccomp_syscall_resolve_num_arch (token, nr);
  if (size == 0)
    return mc_error_set (err, EINVAL, "seccomp: no room for a name");
  name[0] = '\0';
  if (found != NULL && snprintf (name, size, "%s", found) >= (int) size)
    return mc_error_set (err, ENAMETOOLONG, "seccomp: syscall %d's name", nr);
  return 0;
}
