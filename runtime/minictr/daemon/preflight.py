"""Can this machine run a rootless daemon? Each check says why not, in one line."""

import os

from minictr.hostinfo import CannotStart, read_text


def check_user_namespaces(proc="/proc"):
    max_ns = read_text(f"{proc}/sys/user/max_user_namespaces")
    if max_ns is not None and int(max_ns) == 0:
        raise CannotStart("user namespaces are disabled (sysctl user.max_user_namespaces = 0)")
    clone = read_text(f"{proc}/sys/kernel/unprivileged_userns_clone")
    if clone is not None and int(clone) == 0:
        raise CannotStart("unprivileged user namespaces are disabled (sysctl kernel.unprivileged_userns_clone = 0)")
    restrict = read_text(f"{proc}/sys/kernel/apparmor_restrict_unprivileged_userns")
    if restrict is not None and int(restrict) == 1:
        raise CannotStart("AppArmor forbids unprivileged user namespaces "
                          "(sysctl kernel.apparmor_restrict_unprivileged_userns = 1)")


def check_overlayfs(proc="/proc"):
    filesystems = read_text(f"{proc}/filesystems") or ""
    if not any(line.split()[-1:] == ["overlay"] for line in filesystems.splitlines()):
        raise CannotStart("overlayfs is not available in this kernel (try `modprobe overlay` as root)")


def check_writable_dir(path, what):
    try:
        os.makedirs(path, 0o700, exist_ok=True)
    except OSError as e:
        raise CannotStart(f"cannot create the {what} {path}: {e.strerror}") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise CannotStart(f"the {what} {path} is not writable")
