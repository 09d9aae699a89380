"""Can this machine run a rootless daemon? Each check says why not, in one line."""

import os
import pwd

from minictr.errors import MinictrError


DOCTOR_HINT = "run `minictr doctor` to check this machine"


class CannotStart(MinictrError):
    """The daemon cannot run here; the message says what is missing and points to `minictr doctor`."""

    def __init__(self, message):
        super().__init__(f"{message}; {DOCTOR_HINT}")


def _read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def check_user_namespaces(proc="/proc"):
    max_ns = _read(f"{proc}/sys/user/max_user_namespaces")
    if max_ns is not None and int(max_ns) == 0:
        raise CannotStart("user namespaces are disabled (sysctl user.max_user_namespaces = 0)")
    clone = _read(f"{proc}/sys/kernel/unprivileged_userns_clone")
    if clone is not None and int(clone) == 0:
        raise CannotStart("unprivileged user namespaces are disabled (sysctl kernel.unprivileged_userns_clone = 0)")
    restrict = _read(f"{proc}/sys/kernel/apparmor_restrict_unprivileged_userns")
    if restrict is not None and int(restrict) == 1:
        raise CannotStart("AppArmor forbids unprivileged user namespaces "
                          "(sysctl kernel.apparmor_restrict_unprivileged_userns = 1)")


def check_overlayfs(proc="/proc"):
    filesystems = _read(f"{proc}/filesystems") or ""
    if not any(line.split()[-1:] == ["overlay"] for line in filesystems.splitlines()):
        raise CannotStart("overlayfs is not available in this kernel (try `modprobe overlay` as root)")


def subordinate_ids(path, user_name, user_id):
    """(start, count) of the first range in /etc/subuid or /etc/subgid for this user, or None."""
    text = _read(path) or ""
    for line in text.splitlines():
        fields = line.strip().split(":")
        if len(fields) == 3 and fields[0] in (user_name, str(user_id)) and fields[2].isdigit() and int(fields[2]) > 0:
            return int(fields[1]), int(fields[2])
    return None


def user_name(uid):
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def check_writable_dir(path, what):
    try:
        os.makedirs(path, 0o700, exist_ok=True)
    except OSError as e:
        raise CannotStart(f"cannot create the {what} {path}: {e.strerror}") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise CannotStart(f"the {what} {path} is not writable")
