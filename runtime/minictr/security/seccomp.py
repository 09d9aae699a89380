"""Seccomp and no-new-privileges: `--security-opt` parsed as Docker's daemon does, profiles in Docker's
JSON format turned into libseccomp rules as moby does, and the compiled BPF programs cached.

The daemon compiles (libseccomp, through minictr._native) one filter per (profile, capabilities, arch,
kernel) into `<data_root>/seccomp/<sha256>.bpf`; the monitor's `seccomp PATH` key loads that file in
the container's process (docs/internals.md). A container's start pays nothing after the first compile.
"""

import functools
import hashlib
import json
import os
import tempfile
import threading
from importlib import resources

from minictr.errors import InvalidArgument

DEFAULT_PROFILE_NAME = "default-seccomp.json"
UNCONFINED = "unconfined"

# libseccomp's action values (seccomp.h); ERRNO and TRACE carry a 16-bit datum.
_ACT_KILL_PROCESS = 0x80000000
_ACT_KILL_THREAD = 0x00000000
_ACT_TRAP = 0x00030000
_ACT_ERRNO = 0x00050000
_ACT_TRACE = 0x7FF00000
_ACT_LOG = 0x7FFC0000
_ACT_ALLOW = 0x7FFF0000
ACTIONS = {
    "SCMP_ACT_KILL": _ACT_KILL_THREAD, "SCMP_ACT_KILL_THREAD": _ACT_KILL_THREAD,
    "SCMP_ACT_KILL_PROCESS": _ACT_KILL_PROCESS, "SCMP_ACT_TRAP": _ACT_TRAP, "SCMP_ACT_ERRNO": _ACT_ERRNO,
    "SCMP_ACT_TRACE": _ACT_TRACE, "SCMP_ACT_LOG": _ACT_LOG, "SCMP_ACT_ALLOW": _ACT_ALLOW,
}
_EPERM = 1
OPERATORS = {
    "SCMP_CMP_NE": 1, "SCMP_CMP_LT": 2, "SCMP_CMP_LE": 3, "SCMP_CMP_EQ": 4, "SCMP_CMP_GE": 5,
    "SCMP_CMP_GT": 6, "SCMP_CMP_MASKED_EQ": 7,
}
# Go's names (what a profile's includes/excludes `arches` say) and libseccomp's, by uname's machine.
_GO_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386", "s390x": "s390x",
            "ppc64le": "ppc64le", "riscv64": "riscv64", "mips64": "mips64", "loongarch64": "loong64"}
_SCMP_ARCH = {"x86_64": "SCMP_ARCH_X86_64", "aarch64": "SCMP_ARCH_AARCH64", "armv7l": "SCMP_ARCH_ARM",
              "i686": "SCMP_ARCH_X86", "s390x": "SCMP_ARCH_S390X", "ppc64le": "SCMP_ARCH_PPC64LE",
              "riscv64": "SCMP_ARCH_RISCV64", "mips64": "SCMP_ARCH_MIPS64",
              "loongarch64": "SCMP_ARCH_LOONGARCH64"}


class SecurityOptions:
    """HostConfig.SecurityOpt as Docker's daemon reads it: `seccomp` is None (the default profile),
    "unconfined", or a profile's JSON text."""

    def __init__(self, seccomp=None, no_new_privileges=False):
        self.seccomp = seccomp
        self.no_new_privileges = no_new_privileges


def _parse_bool(text):
    """Go's strconv.ParseBool."""
    if text in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if text in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    raise ValueError(text)


def parse_security_opts(opts):
    """Docker's parseSecurityOpt (moby daemon): its words for what it refuses. minictr applies
    neither SELinux nor AppArmor: `label=disable` and `apparmor=unconfined` are accepted (that is
    what it does), any other `label`/`apparmor` value is refused naming the system."""
    result = SecurityOptions()
    for opt in opts or []:
        if opt == "no-new-privileges":
            result.no_new_privileges = True
            continue
        if opt == "disable":
            continue
        sep = "=" if "=" in opt else ":" if ":" in opt else None
        if sep is None:
            raise InvalidArgument(f"invalid --security-opt 1: {json.dumps(opt)}")
        key, value = opt.split(sep, 1)
        if key == "seccomp":
            result.seccomp = None if value == "builtin" else value
        elif key == "no-new-privileges":
            try:
                result.no_new_privileges = _parse_bool(value)
            except ValueError:
                raise InvalidArgument(f"invalid --security-opt 2: {json.dumps(opt)}") from None
        elif key == "label" and value != "disable" or key == "apparmor" and value != "unconfined":
            # Asking for a confinement minictr cannot apply must not pass silently; asking for none
            # (label=disable, apparmor=unconfined) is what every minictr container has.
            system = "SELinux" if key == "label" else "AppArmor"
            raise InvalidArgument(f"minictr does not support {system}: --security-opt {opt} "
                                  f"(only {key}{sep}{'disable' if key == 'label' else 'unconfined'} is accepted)")
        elif key not in ("label", "apparmor"):
            raise InvalidArgument(f"invalid --security-opt 2: {json.dumps(opt)}")
    return result


@functools.cache
def default_profile_text():
    """Our default profile: Docker's, plus ioctl(TIOCSTI) refused."""
    return resources.files("minictr.security").joinpath(DEFAULT_PROFILE_NAME).read_text()


def profile_text(host_config):
    """The profile a container's processes run under, as JSON text, or None for no filter."""
    if host_config.get("Privileged"):
        return None
    chosen = parse_security_opts(host_config.get("SecurityOpt")).seccomp
    if chosen == UNCONFINED:
        return None
    return default_profile_text() if chosen is None else chosen


# ---- a profile to libseccomp rules (moby's profiles/seccomp and runc's patterns) -------------------

class Host:
    """What a profile's conditions are evaluated against besides the capabilities."""

    def __init__(self, machine=None, kernel=None):
        uname = os.uname()
        self.machine = machine or uname.machine
        self.kernel = kernel or uname.release

    @property
    def go_arch(self):
        return _GO_ARCH.get(self.machine, self.machine)

    @property
    def scmp_arch(self):
        return _SCMP_ARCH.get(self.machine, "SCMP_ARCH_" + self.machine.upper())


def _decode(text):
    try:
        profile = json.loads(text)
    except ValueError as e:
        raise InvalidArgument(f"Decoding seccomp profile failed: {e}") from None
    if not isinstance(profile, dict):
        raise InvalidArgument("Decoding seccomp profile failed: a profile is a JSON object")
    return profile


def _action(name, errno_ret, default_errno):
    if name not in ACTIONS:
        raise InvalidArgument(f"seccomp profile: unsupported action {json.dumps(name)}")
    value = ACTIONS[name]
    if value in (_ACT_ERRNO, _ACT_TRACE):
        datum = default_errno if errno_ret is None else errno_ret
        if not isinstance(datum, int) or not 0 <= datum <= 0xFFFF:
            raise InvalidArgument(f"seccomp profile: bad errnoRet {json.dumps(datum)}")
        value |= datum
    return value


def _kernel_at_least(release, wanted):
    def numbers(text):
        parts = []
        for piece in text.split("-")[0].split("."):
            digits = "".join(ch for ch in piece if ch.isdigit())
            parts.append(int(digits or 0))
        return (parts + [0, 0, 0])[:3]

    return numbers(release) >= numbers(wanted)


def _applies(entry, caps, host):
    """moby's filter: every included cap held, no excluded one; the host's arch; the running kernel."""
    includes = entry.get("includes") or {}
    excludes = entry.get("excludes") or {}
    if includes.get("arches") and host.go_arch not in includes["arches"]:
        return False
    if includes.get("caps") and not all(c in caps for c in includes["caps"]):
        return False
    if includes.get("minKernel") and not _kernel_at_least(host.kernel, includes["minKernel"]):
        return False
    if excludes.get("arches") and host.go_arch in excludes["arches"]:
        return False
    if excludes.get("caps") and any(c in caps for c in excludes["caps"]):
        return False
    return True


def _comparisons(entry):
    args = []
    for arg in entry.get("args") or []:
        try:
            op = OPERATORS[arg["op"]]
            args.append((int(arg["index"]), op, int(arg.get("value", 0)), int(arg.get("valueTwo", 0))))
        except (KeyError, TypeError, ValueError):
            raise InvalidArgument(f"seccomp profile: bad argument condition {json.dumps(arg)}") from None
        if not 0 <= args[-1][0] <= 5:
            raise InvalidArgument(f"seccomp profile: argument index {args[-1][0]} out of range")
    indexes = [a[0] for a in args]
    # libseccomp refuses two comparisons of one argument in a rule: runc then adds each comparison
    # as a rule of its own (so they are ORed); we do the same.
    if len(set(indexes)) < len(indexes):
        return [[a] for a in args]
    return [args]


def _arches(profile, host):
    if profile.get("architectures") and profile.get("archMap"):
        raise InvalidArgument("both 'architectures' and 'archMap' are specified in the seccomp profile, "
                              "use either 'architectures' or 'archMap'")
    scmp = list(profile.get("architectures") or [])
    for entry in profile.get("archMap") or []:
        if entry.get("architecture") == host.scmp_arch:
            scmp = [entry["architecture"]] + list(entry.get("subArchitectures") or [])
    return [a.removeprefix("SCMP_ARCH_").lower() for a in scmp if a != host.scmp_arch]


def rules(text, caps, host=None):
    """(default action, extra arches, [(name, action, [(index, op, value, value_two)])]) for profile
    TEXT and a container holding CAPS. Raises InvalidArgument for a profile Docker would refuse."""
    host = host or Host()
    profile = _decode(text)
    default_errno = profile.get("defaultErrnoRet")
    default = _action(profile.get("defaultAction", ""), default_errno, _EPERM)
    result = []
    for entry in profile.get("syscalls") or []:
        if not isinstance(entry, dict):
            raise InvalidArgument("Decoding seccomp profile failed: a syscalls entry is not an object")
        if entry.get("name") and entry.get("names"):
            raise InvalidArgument("'name' and 'names' were specified in the seccomp profile, "
                                  "use either 'name' or 'names'")
        names = entry.get("names") or ([entry["name"]] if entry.get("name") else [])
        if not _applies(entry, caps, host):
            continue
        action = _action(entry.get("action", ""), entry.get("errnoRet"), _EPERM)
        for args in _comparisons(entry):
            result += [(name, action, args) for name in names]
    # libseccomp refuses a rule that does what the default does (runc skips them): dropped last, since
    # such a rule may still be an exception to another one.
    result = [rule for rule in _carve_exceptions(result) if rule[1] != default]
    return default, _arches(profile, host), result


def _carve_exceptions(rules):
    """libseccomp lets an unconditional rule win over a conditional one of another action on the same
    syscall: Docker's `ioctl` allowed plus our ioctl(fd, TIOCSTI) refused would compile to ioctl allowed.
    So an unconditional rule with such an exception (one masked or equal comparison) becomes one rule per
    bit of the mask: the action holds whenever some masked bit differs from the exception's value."""
    exceptions = {}
    for name, action, args in rules:
        if len(args) == 1 and args[0][1] in (OPERATORS["SCMP_CMP_MASKED_EQ"], OPERATORS["SCMP_CMP_EQ"]):
            exceptions.setdefault(name, []).append((action, args[0]))
    carved = []
    for name, action, args in rules:
        others = [cmp for act, cmp in exceptions.get(name, []) if act != action]
        if args or len(others) != 1:  # several exceptions would need their ANDs: left to libseccomp
            carved.append((name, action, args))
            continue
        index, op, value, value_two = others[0]
        mask, datum = (value, value_two) if op == OPERATORS["SCMP_CMP_MASKED_EQ"] else ((1 << 64) - 1, value)
        for bit in range(64):
            if mask >> bit & 1:
                wanted = 0 if datum >> bit & 1 else 1 << bit
                carved.append((name, action, [(index, OPERATORS["SCMP_CMP_MASKED_EQ"], 1 << bit, wanted)]))
    return carved


# ---- compiled filters, cached ------------------------------------------------------------------

class FilterCache:
    """Compiled filters under `<data_root>/seccomp/`, by the sha256 of everything they depend on."""

    def __init__(self, data_root, host=None):
        self.dir = os.path.join(data_root, "seccomp")
        self.host = host or Host()
        self._known = {}
        self._lock = threading.Lock()

    def path(self, text, caps):
        """The .bpf file for profile TEXT and capabilities CAPS, compiled if no one did yet."""
        memo = (text, caps)
        known = self._known.get(memo)
        if known is not None and os.path.exists(known):
            return known
        key = hashlib.sha256("\0".join([text, ",".join(sorted(caps)), self.host.machine,
                                        self.host.kernel]).encode()).hexdigest()
        path = os.path.join(self.dir, key + ".bpf")
        with self._lock:
            if not os.path.exists(path):
                self._compile(text, caps, path)
            self._known[memo] = path
        return path

    def _compile(self, text, caps, path):
        from minictr import native

        default, arches, entries = rules(text, caps, self.host)
        os.makedirs(self.dir, mode=0o700, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.dir, prefix=".tmp-")
        try:
            try:
                native.seccomp_compile(default, arches, entries, fd)
            except OSError as e:
                raise InvalidArgument(f"seccomp profile: {e.strerror}") from None
            finally:
                os.close(fd)
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise


def check(host_config, caps, cache):
    """Refuse bad security options or a bad profile at create (compiling it: start is then free)."""
    options = parse_security_opts(host_config.get("SecurityOpt"))
    text = profile_text(host_config)
    if text is not None:
        cache.path(text, caps)
    return options


def monitor_entries(host_config, caps, cache):
    """The monitor's `seccomp` and `no_new_privs` keys for a process of the container."""
    entries = []
    text = profile_text(host_config)
    if text is not None:
        entries.append(("seccomp", cache.path(text, caps)))
    if parse_security_opts(host_config.get("SecurityOpt")).no_new_privileges:
        entries.append(("no_new_privs", "1"))
    return entries
