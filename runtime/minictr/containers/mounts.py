"""A container's mounts: Docker's `-v`, `--mount`, `--tmpfs` syntaxes (parsed here for the CLI and
the daemon alike: no click, no service imports), the checks of the create body's HostConfig.Binds,
Mounts, Tmpfs and VolumesFrom, and their resolution into the list a container keeps.

A resolved mount is a dict: {"type": "volume"|"bind"|"tmpfs", "name", "source", "destination",
"rw", "mode", "propagation", "options" (tmpfs data), "anonymous"}."""

import os
import posixpath

from minictr.errors import InvalidArgument

# Patterns here are compiled (and cached by re) where they are used: the CLI imports this module
# on every `run`, and re would cost it ~7 ms.
_VOLUME_NAME = r"^[a-zA-Z0-9][a-zA-Z0-9_.-]+$"
_PROPAGATIONS = ("shared", "rshared", "slave", "rslave", "private", "rprivate")
_MODE_WORDS = ("ro", "rw", "z", "Z", "nocopy", "copy", *_PROPAGATIONS)
_TMPFS_FLAGS = ("ro", "rw", "nosuid", "suid", "nodev", "dev", "noexec", "exec")
_TMPFS_KEYS = ("size", "mode", "uid", "gid", "nr_inodes", "nr_blocks")
# Docker's default for --tmpfs and HostConfig.Tmpfs.
_TMPFS_DEFAULT = "noexec,nosuid,nodev"


def _invalid_spec(raw):
    return InvalidArgument(f"invalid volume specification: '{raw}'")


def _invalid_config(kind, message):
    return InvalidArgument(f'invalid mount config for type "{kind}": {message}')


def _check_target(kind, target):
    if not target:
        raise _invalid_config(kind, "field Target must not be empty")
    if not target.startswith("/"):
        raise _invalid_config(kind, f"invalid mount path: '{target}' mount path must be absolute")
    if posixpath.normpath(target) == "/":
        raise InvalidArgument("invalid specification: destination can't be '/'")


def check_volume_name(name):
    import re

    if not re.match(_VOLUME_NAME, name):
        raise InvalidArgument(
            f'create {name}: "{name}" includes invalid characters for a local volume name, only '
            '"[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, use absolute path')


def _check_mode(mode, raw):
    words = mode.split(",") if mode else []
    if any(w not in _MODE_WORDS for w in words) or sum(w in ("ro", "rw") for w in words) > 1 \
            or sum(w in _PROPAGATIONS for w in words) > 1 or sum(w in ("nocopy", "copy") for w in words) > 1:
        raise InvalidArgument(f"invalid mode: {mode}")
    return words


def parse_bind(raw):
    """One `-v`/HostConfig.Binds entry `SRC:DST[:MODE]` (SRC a host path or a volume name), or a
    bare `DST` (an anonymous volume, only from `-v`); returns a resolved-mount dict without source."""
    parts = raw.split(":")
    if not parts[0] or len(parts) > 3 or any(p == "" for p in parts[1:]):
        raise _invalid_spec(raw)
    if len(parts) == 1:
        source, target, mode = "", parts[0], ""
    elif len(parts) == 2:
        if all(w in _MODE_WORDS for w in parts[1].split(",")):
            raise _invalid_spec(raw)  # `/dst:ro`: an anonymous volume takes no mode
        source, target, mode = parts[0], parts[1], ""
    else:
        source, target, mode = parts
    words = _check_mode(mode, raw)
    kind = "bind" if source.startswith("/") else "volume"
    _check_target(kind, target)
    if kind == "volume" and source:
        check_volume_name(source)
    propagation = next((w for w in words if w in _PROPAGATIONS), "")
    if propagation and kind != "bind":
        raise InvalidArgument(f"invalid mode: {mode}")
    return {"type": kind, "name": source if kind == "volume" else "",
            "source": posixpath.normpath(source) if kind == "bind" else "",
            "destination": posixpath.normpath(target), "rw": "ro" not in words, "mode": mode,
            "propagation": (propagation or "rprivate") if kind == "bind" else "",
            "options": "", "anonymous": kind == "volume" and not source, "create_source": True,
            "nocopy": "nocopy" in words}


def _bool_value(key, value, field):
    if value is None or value.lower() in ("true", "1"):
        return True
    if value.lower() in ("false", "0"):
        return False
    raise InvalidArgument(f"invalid value for {key}: {value}" if field is None else field)


def parse_mount_flag(text):
    """Docker's `--mount` CSV (`type=bind,src=/x,dst=/y,readonly`) → a HostConfig.Mounts object."""
    mount = {"Type": "volume"}
    volume_options, tmpfs_options, bind_options = {}, {}, {}
    if not text:
        raise InvalidArgument("invalid argument \"\" for \"--mount\" flag: value is empty")
    for field in text.split(","):
        key, sep, value = field.partition("=")
        key = key.strip().lower()
        if not sep and key not in ("readonly", "ro", "volume-nocopy"):
            raise InvalidArgument(f"invalid field '{field}' must be a key=value pair")
        value = value if sep else None
        if sep and value == "" and key not in ("source", "src"):
            raise InvalidArgument(f"invalid value for '{key}': value is empty")
        if key == "type":
            if value not in ("volume", "bind", "tmpfs"):
                raise InvalidArgument(f"invalid mount type: {value}" if value not in ("npipe", "cluster", "image")
                                      else f"mount type {value} is not supported")
            mount["Type"] = value
        elif key in ("source", "src"):
            mount["Source"] = value
        elif key in ("target", "dst", "destination"):
            mount["Target"] = value
        elif key in ("readonly", "ro"):
            mount["ReadOnly"] = _bool_value(key, value, None)
        elif key == "volume-nocopy":
            volume_options["NoCopy"] = _bool_value(key, value, None)
        elif key == "volume-opt":
            k, has_value, v = value.partition("=")
            if not has_value:
                raise InvalidArgument(f"invalid field '{field}' must be a key=value pair")
            volume_options.setdefault("DriverConfig", {"Options": {}})["Options"][k] = v
        elif key == "volume-label":
            k, _, v = value.partition("=")
            volume_options.setdefault("Labels", {})[k] = v
        elif key == "volume-driver":
            volume_options.setdefault("DriverConfig", {"Options": {}})["Name"] = value
        elif key == "tmpfs-size":
            tmpfs_options["SizeBytes"] = parse_size(value)
        elif key == "tmpfs-mode":
            try:
                tmpfs_options["Mode"] = int(value, 8)
            except ValueError:
                raise InvalidArgument(f"invalid value for {key}: {value}") from None
        elif key == "bind-propagation":
            bind_options["Propagation"] = value
        elif key == "consistency":
            mount["Consistency"] = value
        else:
            raise InvalidArgument(f"unexpected key '{key}' in '{field}'")
    if not mount.get("Target"):
        raise InvalidArgument("target is required")
    if volume_options:
        mount["VolumeOptions"] = volume_options
    if tmpfs_options:
        mount["TmpfsOptions"] = tmpfs_options
    if bind_options:
        mount["BindOptions"] = bind_options
    check_mount_object(mount)
    return mount


def parse_size(value):
    import re

    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([kKmMgGtT]?)[iI]?[bB]?", value or "")
    if not match:
        raise InvalidArgument(f"invalid size: '{value}'")
    factor = 1024 ** " kmgt".index(match.group(2).lower() or " ")
    return int(float(match.group(1)) * factor)


def check_mount_object(mount):
    """A HostConfig.Mounts entry as Docker's daemon checks it; returns its resolved-mount dict."""
    if not isinstance(mount, dict):
        raise InvalidArgument("invalid mount: expected an object")
    kind = mount.get("Type") or ""
    if kind not in ("volume", "bind", "tmpfs"):
        raise InvalidArgument(f"mount type unknown: '{kind}'" if kind else "invalid mount config: field Type must not be empty")
    source, target = mount.get("Source") or "", mount.get("Target") or ""
    _check_target(kind, target)
    for field, allowed in (("BindOptions", "bind"), ("VolumeOptions", "volume"), ("TmpfsOptions", "tmpfs")):
        if mount.get(field) and kind != allowed:
            raise _invalid_config(kind, f"field {field} must not be specified")
    resolved = {"type": kind, "name": "", "source": "", "destination": posixpath.normpath(target),
                "rw": not mount.get("ReadOnly"), "mode": "", "propagation": "", "options": "",
                "anonymous": False, "create_source": False, "nocopy": False}
    if kind == "bind":
        if not source:
            raise _invalid_config(kind, "field Source must not be empty")
        if not source.startswith("/"):
            raise _invalid_config(kind, f"invalid mount path: '{source}' mount path must be absolute")
        propagation = (mount.get("BindOptions") or {}).get("Propagation") or "rprivate"
        if propagation not in _PROPAGATIONS:
            raise InvalidArgument(f"invalid propagation mode: {propagation}")
        resolved.update(source=posixpath.normpath(source), propagation=propagation)
    elif kind == "volume":
        if source:
            check_volume_name(source)
        options = mount.get("VolumeOptions") or {}
        resolved.update(name=source, anonymous=not source, nocopy=bool(options.get("NoCopy")),
                        volume_options=dict((options.get("DriverConfig") or {}).get("Options") or {}))
    else:
        if source:
            raise _invalid_config(kind, "field Source must not be specified")
        options = mount.get("TmpfsOptions") or {}
        words = []
        if options.get("SizeBytes"):
            if not isinstance(options["SizeBytes"], int) or options["SizeBytes"] < 0:
                raise _invalid_config(kind, f"invalid tmpfs size: {options['SizeBytes']}")
            words.append(f"size={options['SizeBytes']}")
        if options.get("Mode"):
            words.append(f"mode={options['Mode']:o}")
        resolved["options"] = ",".join(["nosuid", "nodev"] + words)
    return resolved


def parse_tmpfs(path, options):
    """One `--tmpfs PATH[:OPTIONS]` / HostConfig.Tmpfs entry."""
    import re

    _check_target("tmpfs", path)
    words = [w for w in (options or "").split(",") if w]
    for word in words:
        key, sep, value = word.partition("=")
        if (sep and (key not in _TMPFS_KEYS or not value)) or (not sep and word not in _TMPFS_FLAGS):
            raise InvalidArgument(f"invalid tmpfs option [\"{word}\"]" if not sep or key not in _TMPFS_KEYS
                                  else f"invalid tmpfs option {word}")
        if key == "size" and not re.fullmatch(r"\d+[kmgKMG%]?", value):
            raise InvalidArgument(f"invalid tmpfs option {word}")
    return {"type": "tmpfs", "name": "", "source": "", "destination": posixpath.normpath(path),
            "rw": "ro" not in words, "mode": options or "", "propagation": "",
            "options": ",".join([_TMPFS_DEFAULT] + words), "anonymous": False, "create_source": False,
            "nocopy": False}


def split_tmpfs_flag(text):
    """`--tmpfs /run:size=1m` → ("/run", "size=1m")."""
    path, _, options = text.partition(":")
    return path, options


def parse_volumes_from(raw):
    """`CTR[:ro|rw]` → (container ref, "ro"|"rw"|"")."""
    ref, sep, mode = raw.partition(":")
    if not ref or (sep and mode not in ("ro", "rw")):
        raise InvalidArgument(f"invalid mode: {mode}" if ref else f"invalid volumes-from: '{raw}'")
    return ref, mode


def requested(host_config, config_volumes):
    """Every mount of a create body, checked, before volumes-from and the image's: a list of
    resolved-mount dicts; duplicates refused as Docker does."""
    mounts = []
    for raw in _list(host_config, "Binds"):
        if not isinstance(raw, str):
            raise InvalidArgument("invalid HostConfig.Binds: expected strings")
        mount = parse_bind(raw)
        if mount["anonymous"]:
            raise _invalid_spec(raw)  # Binds always name a source
        mounts.append(mount)
    mounts += [check_mount_object(m) for m in _list(host_config, "Mounts")]
    tmpfs = host_config.get("Tmpfs") or {}
    if not isinstance(tmpfs, dict):
        raise InvalidArgument("invalid HostConfig.Tmpfs: expected an object")
    mounts += [parse_tmpfs(path, options) for path, options in tmpfs.items()]
    for path in config_volumes or {}:
        anonymous = parse_bind(path)
        if not anonymous["anonymous"]:
            raise _invalid_spec(path)
        if anonymous["destination"] not in {m["destination"] for m in mounts}:
            mounts.append(anonymous)
    check_duplicates(mounts)
    for ref in _list(host_config, "VolumesFrom"):
        if not isinstance(ref, str):
            raise InvalidArgument("invalid HostConfig.VolumesFrom: expected strings")
        parse_volumes_from(ref)
    return mounts


def check_duplicates(mounts):
    seen = set()
    for mount in mounts:
        if mount["destination"] in seen:
            raise InvalidArgument(f"Duplicate mount point: {mount['destination']}")
        seen.add(mount["destination"])


def _list(host_config, key):
    value = host_config.get(key) or []
    if not isinstance(value, list):
        raise InvalidArgument(f"invalid HostConfig.{key}: expected a list")
    return value


def check_bind_source(mount):
    """A bind source must exist (`--mount`) or is created (`-v`, as Docker does), and the daemon
    must be able to read it: rootless, a directory the user cannot read is refused here rather
    than failing at start."""
    source = mount["source"]
    if not os.path.lexists(source):
        if not mount.get("create_source"):
            raise _invalid_config("bind", f"bind source path does not exist: {source}")
        return
    need = os.R_OK | (os.X_OK if os.path.isdir(source) else 0)
    if not os.access(source, need):
        raise InvalidArgument(f"error while creating mount source path '{source}': permission denied "
                              "(the daemon's user cannot read it)")


def create_bind_source(mount):
    if mount["type"] == "bind" and not os.path.lexists(mount["source"]):
        try:
            os.makedirs(mount["source"], 0o755, exist_ok=True)
        except OSError as e:
            raise InvalidArgument(f"error while creating mount source path '{mount['source']}': "
                                  f"mkdir {e.filename}: {e.strerror}") from None


def by_depth(mounts):
    """Parents before children (`/a` before `/a/b`), as Docker mounts them."""
    return sorted(mounts, key=lambda m: len([p for p in m["destination"].split("/") if p]))


def inspect_entry(mount, volume_mountpoint=""):
    """One item of inspect's Mounts array."""
    if mount["type"] == "volume":
        return {"Type": "volume", "Name": mount["name"], "Source": volume_mountpoint,
                "Destination": mount["destination"], "Driver": "local", "Mode": mount["mode"],
                "RW": mount["rw"], "Propagation": ""}
    if mount["type"] == "bind":
        return {"Type": "bind", "Source": mount["source"], "Destination": mount["destination"],
                "Mode": mount["mode"], "RW": mount["rw"], "Propagation": mount["propagation"]}
    return {"Type": "tmpfs", "Source": "", "Destination": mount["destination"], "Mode": mount["mode"],
            "RW": mount["rw"], "Propagation": ""}


# ---- seeding a new volume with the image's files -----------------------------------------

def seed_volume(root_fd, destination, mountpoint, open_in_root):
    """Copy what the container's root has at `destination` (resolved inside the root by
    `open_in_root`, nothing followed out of it) into the empty volume at `mountpoint`: owners,
    modes and times kept, symlinks copied as symlinks, special files skipped."""
    try:
        source = open_in_root(root_fd, destination, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return  # nothing there, or not a directory: nothing to copy
    target = os.open(mountpoint, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        st = os.fstat(source)
        _copy_tree(source, target)
        os.chown(target, st.st_uid, st.st_gid)
        os.chmod(target, st.st_mode & 0o7777)
    finally:
        os.close(source)
        os.close(target)


def _copy_tree(source_fd, target_fd):
    import stat as st_

    for name in os.listdir(source_fd):
        st = os.stat(name, dir_fd=source_fd, follow_symlinks=False)
        if st_.S_ISDIR(st.st_mode):
            os.mkdir(name, 0o700, dir_fd=target_fd)
            child_src = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=source_fd)
            child_dst = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=target_fd)
            try:
                _copy_tree(child_src, child_dst)
            finally:
                os.close(child_src)
                os.close(child_dst)
        elif st_.S_ISLNK(st.st_mode):
            os.symlink(os.readlink(name, dir_fd=source_fd), name, dir_fd=target_fd)
        elif st_.S_ISREG(st.st_mode):
            _copy_file(source_fd, target_fd, name)
        else:
            continue
        os.chown(name, st.st_uid, st.st_gid, dir_fd=target_fd, follow_symlinks=False)
        if not st_.S_ISLNK(st.st_mode):
            os.chmod(name, st.st_mode & 0o7777, dir_fd=target_fd)
        os.utime(name, ns=(st.st_atime_ns, st.st_mtime_ns), dir_fd=target_fd, follow_symlinks=False)


def _copy_file(source_fd, target_fd, name):
    src = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=source_fd)
    try:
        dst = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                      dir_fd=target_fd)
        try:
            while os.sendfile(dst, src, None, 1 << 20):
                pass
        finally:
            os.close(dst)
    finally:
        os.close(src)
