"""The only importer of minictr._native: C errors become OSError here.

Every C function returns 0 or -1 and fills a `struct mc_error {errnum, msg}`;
`OSError(errnum, msg)` lets Python pick the subclass (PermissionError,
FileNotFoundError, …) by itself.
"""

import os
from pathlib import Path

from minictr._native import ffi, lib

# minictr-monitor is built next to the package (setup.py's build step).
MONITOR_PATH = str(Path(__file__).resolve().parent / "minictr-monitor")
# minictr-init, bind-mounted into containers run with --init (as Docker does with docker-init).
INIT_PATH = str(Path(__file__).resolve().parent / "minictr-init")
# minictr-pause holds the rootless daemon's namespaces between one daemon and the next.
PAUSE_PATH = str(Path(__file__).resolve().parent / "minictr-pause")


def _check(ret: int, err) -> None:
    if ret < 0:
        raise OSError(err.errnum, ffi.string(err.msg).decode(errors="replace"))


def _cstrings(items):
    """A NULL-terminated char*[] and the buffers it points to (keep both alive)."""
    buffers = [ffi.new("char[]", os.fsencode(item)) for item in items]
    return ffi.new("char *[]", buffers + [ffi.NULL]), buffers


def spawn_in_userns(argv: list[str], env: dict[str, str] | list[str]) -> tuple[int, int]:
    """Clone a child into new user + mount + network namespaces, stopped before exec.

    The caller writes its id maps (newuidmap/newgidmap on the returned pid), then
    calls release_userns(sync_fd). argv[0] must be a path.
    """
    return _spawn_child(lib.mc_userns_spawn, argv, env)


def join_userns(holder_pid: int, argv: list[str], env: dict[str, str] | list[str]) -> tuple[int, int]:
    """Fork a child into the user, mount and network namespaces of `holder_pid`, stopped before
    exec (release it with release_userns)."""
    return _spawn_child(lambda *args: lib.mc_userns_join(holder_pid, *args), argv, env)


def _spawn_child(spawn, argv, env):
    """Call `spawn(argv, envp, &pid, &sync_fd, err)` with C copies of argv and env."""
    if isinstance(env, dict):
        env = [f"{k}={v}" for k, v in env.items()]
    c_argv, argv_keep = _cstrings(argv)
    c_env, env_keep = _cstrings(env)
    pid = ffi.new("int *")
    sync_fd = ffi.new("int *")
    err = ffi.new("struct mc_error *")
    _check(spawn(c_argv, c_env, pid, sync_fd, err), err)
    del argv_keep, env_keep
    return pid[0], sync_fd[0]


def release_userns(sync_fd: int) -> None:
    """Let the spawned child exec; raises OSError if its exec failed. Closes sync_fd."""
    err = ffi.new("struct mc_error *")
    _check(lib.mc_userns_release(sync_fd, err), err)


def open_in_root(root_fd: int, path: str, flags: int) -> int:
    """openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS): `path` resolved as if `root_fd` were `/`,
    so that no symlink or `..` of a container's filesystem leads out of it. Returns the fd (O_CLOEXEC)."""
    fd = ffi.new("int *")
    err = ffi.new("struct mc_error *")
    _check(lib.mc_open_in_root(root_fd, os.fsencode(path), flags, fd, err), err)
    return fd[0]


def mount_overlay(target: str, lowers: list[str], upper: str, work: str, userxattr: bool,
                  lower_dir: str | None = None) -> None:
    """Mount an overlay (lowers top-most first) on `target`; `userxattr` when rootless.
    With `lower_dir`, `lowers` are names relative to it (the store's short links)."""
    c_lowers, keep = _cstrings(lowers)
    err = ffi.new("struct mc_error *")
    c_lower_dir = ffi.NULL if lower_dir is None else os.fsencode(lower_dir)
    _check(lib.mc_overlay_mount(os.fsencode(target), c_lower_dir, c_lowers, os.fsencode(upper),
                                os.fsencode(work), userxattr, err), err)
    del keep


def unmount(target: str) -> None:
    """umount2(MNT_DETACH | UMOUNT_NOFOLLOW)."""
    err = ffi.new("struct mc_error *")
    _check(lib.mc_unmount(os.fsencode(target), err), err)


def bind_mount_in_root(root_fd: int, source: str, destination: str, readonly: bool) -> None:
    """rbind `source` (read-only if asked) on `destination` resolved inside `root_fd` (a
    container's `/`), creating the mount point if missing."""
    err = ffi.new("struct mc_error *")
    _check(lib.mc_bind_mount_in_root(root_fd, os.fsencode(source), os.fsencode(destination), readonly, err),
           err)


def unshare_mount_namespace() -> None:
    """A mount namespace of our own, `/` rslave in it. Call before any thread is started."""
    err = ffi.new("struct mc_error *")
    _check(lib.mc_mountns_unshare(err), err)

def seccomp_compile(default_action: int, arches: list[str], rules: list, out_fd: int) -> None:
    """Compile a seccomp filter with libseccomp and write its classic BPF program to `out_fd`.
    `rules` are (syscall name, action, [(arg index, op, value, value_two), ...]) with the
    arguments ANDed (one comparison per argument); arches are libseccomp's names (`x86`)."""
    c_arches, keep_arches = _cstrings(arches)
    c_rules = ffi.new("struct mc_seccomp_rule[]", max(len(rules), 1))
    names = []
    for c_rule, (name, action, args) in zip(c_rules, rules):
        names.append(ffi.new("char[]", name.encode()))
        c_rule.name = names[-1]
        c_rule.action = action
        c_rule.n_args = len(args)
        for c_arg, (index, op, value, value_two) in zip(c_rule.args, args):
            c_arg.index, c_arg.op, c_arg.value, c_arg.value_two = index, op, value, value_two
    err = ffi.new("struct mc_error *")
    _check(lib.mc_seccomp_compile(default_action, c_arches, c_rules, len(rules), out_fd, err), err)
    del keep_arches, names


def seccomp_syscall_name(arch: str, nr: int) -> str:
    """The name libseccomp gives syscall `nr` on `arch` (`x86_64`), or "" when there is none."""
    name = ffi.new("char[]", 128)
    err = ffi.new("struct mc_error *")
    _check(lib.mc_seccomp_syscall_name(arch.encode(), nr, name, 128, err), err)
    return ffi.string(name).decode()


def forward_start(a: int, b: int, group: int) -> None:
    """Forward between two connected stream sockets in C threads (a copy each way); takes both fds on success."""
    err = ffi.new("struct mc_error *")
    _check(lib.mc_forward_start(a, b, group, err), err)


def forward_shutdown_group(group: int) -> None:
    """Shut down every connection forwarded for `group` (its threads then close the fds)."""
    err = ffi.new("struct mc_error *")
    _check(lib.mc_forward_shutdown_group(group, err), err)


def forward_count(group: int = -1) -> int:
    """How many connections are being forwarded for `group` (all with -1)."""
    return lib.mc_forward_count(group)


_DEVICE_ACCESS = {"m": 1, "r": 2, "w": 4}  # BPF_DEVCG_ACC_MKNOD, _READ, _WRITE


def attach_device_filter(cgroup_dir: str, rules) -> None:
    """cgroup v2: allow only what RULES allow ((type 'a'/'b'/'c', major, minor, access 'rwm'), -1 for
    `*`) to the processes of the group CGROUP_DIR, by a BPF program attached to it."""
    c_rules = ffi.new("struct mc_device_rule[]", max(len(rules), 1))
    for c_rule, (kind, major, minor, access) in zip(c_rules, rules):
        c_rule.type, c_rule.major, c_rule.minor = kind.encode(), major, minor
        c_rule.access = sum(_DEVICE_ACCESS[letter] for letter in set(access))
    err = ffi.new("struct mc_error *")
    _check(lib.mc_device_filter_attach(os.fsencode(cgroup_dir), c_rules, len(rules), err), err)
