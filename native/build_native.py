"""cffi (API mode) build script for minictr._native; used by setup.py's cffi_modules.

Only the surface that Python may call is declared here (docs/internals.md,
"minictr._native"); the monitor's own code is linked in but not exposed.
"""

from pathlib import Path

from cffi import FFI

NATIVE_DIR = Path(__file__).resolve().parent

# The C sources shared by the extension and minictr-monitor (monitor.c adds main).
LIBRARY_SOURCES = ["error.c", "limits.c", "config.c", "sync.c", "container.c", "exec.c", "pty.c", "mounts.c", "userns.c", "log.c", "seccomp_load.c"]
MONITOR_SOURCES = LIBRARY_SOURCES + ["monitor.c"]
# The extension alone compiles seccomp profiles: the static monitor must not link libseccomp.
# forward.c: the daemon's port forwarder; devices.c: the daemon attaches v2 device filters.
EXTENSION_SOURCES = LIBRARY_SOURCES + ["seccomp.c", "forward.c", "devices.c"]
# minictr-init (`run --init`) stands alone: it is linked statically.
INIT_SOURCES = ["init.c"]
# minictr-pause holds the rootless daemon's namespaces between daemons.
PAUSE_SOURCES = ["pause.c"]
CFLAGS = ["-std=gnu11", "-D_GNU_SOURCE", "-O2", "-Wall", "-Wextra"]
# Our own sources are also built warning-free with -Werror (the monitor);
# cffi's generated wrapper is not ours to hold to that.
MONITOR_CFLAGS = CFLAGS + ["-Werror"]

ffibuilder = FFI()
ffibuilder.cdef(
    """
    struct mc_error { int errnum; char msg[512]; };
    int mc_userns_spawn(char *const argv[], char *const envp[], int *pid, int *sync_fd,
                        struct mc_error *err);
    int mc_userns_release(int sync_fd, struct mc_error *err);
    int mc_userns_join(int holder_pid, char *const argv[], char *const envp[], int *pid, int *sync_fd,
                       struct mc_error *err);
    int mc_open_in_root(int rootfd, const char *path, int flags, int *fd, struct mc_error *err);
    int mc_overlay_mount(const char *target, const char *lower_dir, const char *const lowers[],
                         const char *upper, const char *work, bool userxattr, struct mc_error *err);
    int mc_unmount(const char *target, struct mc_error *err);
    int mc_bind_mount_in_root(int rootfd, const char *source, const char *destination, bool readonly,
                              struct mc_error *err);
    int mc_mountns_unshare(struct mc_error *err);
    struct mc_seccomp_arg { unsigned int index; int op; uint64_t value, value_two; };
    struct mc_seccomp_rule { const char *name; uint32_t action; unsigned int n_args;
                             struct mc_seccomp_arg args[6]; };
    int mc_seccomp_compile(uint32_t default_action, const char *const arches[],
                           const struct mc_seccomp_rule *rules, size_t n_rules, int out_fd,
                           struct mc_error *err);
    int mc_seccomp_syscall_name(const char *arch, int nr, char *name, size_t size, struct mc_error *err);
    int mc_forward_start(int a, int b, long long group, struct mc_error *err);
    int mc_forward_shutdown_group(long long group, struct mc_error *err);
    int mc_forward_count(long long group);
    struct mc_device_rule { char type; long long major, minor; unsigned int access; };
    int mc_device_filter_attach(const char *cgroup_dir, const struct mc_device_rule *rules, size_t n_rules,
                                struct mc_error *err);
    """
)
ffibuilder.set_source(
    "minictr._native",
    '#include "mc.h"',
    sources=[f"native/{s}" for s in EXTENSION_SOURCES],  # relative to setup.py
    libraries=["seccomp"],
    include_dirs=["native"],
    extra_compile_args=CFLAGS,
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
