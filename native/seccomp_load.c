/* Loading a seccomp filter and setting no_new_privs in the container's
 * process (init and exec alike), from the BPF program the daemon compiled
 * (seccomp.c; docs/internals.md, keys `seccomp` and `no_new_privs`).
 *
 * The monitor reads the program when it loads its config: after pivot_root
 * (or setns into the container's mount namespace) the host's path is gone.
 */
#include "mc.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

/* The kernel's limit (BPF_MAXINSNS). */
#define MC_SECCOMP_MAX_INSNS 4096

int
mc_seccomp_read (const char *path, void **program, size_t *n_insns, struct mc_error *err)
{
  cleanup_fd int fd = open (path, O_RDONLY | O_CLOEXEC);
  cleanup_free struct sock_filter *insns = NULL;
  struct stat st;
  size_t size, done = 0;

  if (fd < 0)
    return mc_error_set (err, errno, "open seccomp filter `%s`", path);
  if (fstat (fd, &st) < 0)
    return mc_error_set (err, errno, "fstat `%s`", path);
  size = (size_t) st.st_size;
  if (size == 0 || size % sizeof *insns != 0 || size / sizeof *insns > MC_SECCOMP_MAX_INSNS)
    return mc_error_set (err, EINVAL, "seccomp filter `%s`: bad size %zu", path, size);
  insns = malloc (size);
  if (insns == NULL)
    return mc_error_set (err, ENOMEM, "read `%s`", path);
  while (done < size)
    {
      ssize_t n = read (fd, (char *) insns + done, size - done);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        return mc_error_set (err, n < 0 ? errno : EIO, "read `%s`", path);
      done += (size_t) n;
    }
  *program = insns;
  insns = NULL;
  *n_insns = size / sizeof (struct sock_filter);
  return 0;
}

static int
seccomp_load (const struct mc_config *cfg, struct mc_error *err)
{
  struct sock_fprog prog = { .len = (unsigned short) cfg->n_seccomp_insns,
                             .filter = cfg->seccomp_program };

  if (cfg->seccomp_program == NULL)
    return 0;
  if (syscall (SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) < 0)
    return mc_error_set (err, errno, "seccomp SECCOMP_SET_MODE_FILTER");
  return 0;
}

/* Before capabilities are dropped: without no_new_privs, loading a filter
 * needs CAP_SYS_ADMIN (in our user namespace), which we still hold; what
 * runs afterwards (capset, setresuid, close_range, the sync messages,
 * execve) is allowed by Docker's profile. */
int
mc_seccomp_apply_early (const struct mc_config *cfg, struct mc_error *err)
{
  return cfg->no_new_privs ? 0 : seccomp_load (cfg, err);
}

/* Just before execve: with no_new_privs the filter needs no capability, so
 * it is loaded as late as possible and a strict profile cannot break the
 * set-up (runc does the same). */
int
mc_seccomp_apply_late (const struct mc_config *cfg, struct mc_error *err)
{
  if (!cfg->no_new_privs)
    return 0;
  if (prctl (PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
    return mc_error_set (err, errno, "prctl PR_SET_NO_NEW_PRIVS");
  return seccomp_load (cfg, err);
}
