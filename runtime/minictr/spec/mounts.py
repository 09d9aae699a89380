"""Docker's mount syntaxes — `-v`, `--mount`, `--tmpfs`, `--volumes-from` — and the checks of a
create body's HostConfig.Binds, Mounts, Tmpfs and VolumesFrom: one parser for the CLI and the
daemon, which turns each into a resolved-mount dict.

A resolved mount is a dict: {"type": "volume"|"bind"|"tmpfs", "name", "source", "destination",
"rw", "mode", "propagation", "options" (tmpfs data), "anonymous", "create_source", "nocopy"}."""

import posixpath

from minictr.errors import InvalidArgument
from minictr.spec.names import check_volume_name
from minictr.spec.resources import parse_bytes

_PROPAGATIONS = ("shared", "rshared", "slave", "rslave", "private", "rprivate")
_MODE_WORDS = ("ro", "rw", "z", "Z", "nocopy", "copy", *_PROPAGATIONS)
_TMPFS_FLAGS = ("ro", "rw", "nosuid", "suid", "nodev", "dev", "noexec", "exec")
_TMPFS_KEYS = ("size", "mode", "uid", "gid", "nr_inodes", "nr_blocks")
# Docker's default for --tmpfs and HostConfig.Tmpfs.
_TMPFS_DEFAULT = "noexec,nosuid,nodev"


def _invalid_spec(raw):
    return InvalidArgument(f"invalid volume specification: '{raw}'")


def invalid_config(kind, message):
    return InvalidArgument(f'invalid mount config for type "{kind}": {message}')


def _check_target(kind, target):
    if not target:
        raise invalid_config(kind, "field Target must not be empty")
    if not target.startswith("/"):
        raise invalid_config(kind, f"invalid mount path: '{target}' mount path must be absolute")
    if posixpath.normpath(target) == "/":
        raise InvalidArgument("invalid specification: destination can't be '/'")


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
            tmpfs_options["SizeBytes"] = parse_bytes(value)
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
            raise invalid_config(kind, f"field {field} must not be specified")
    resolved = {"type": kind, "name": "", "source": "", "destination": posixpath.normpath(target),
                "rw": not mount.get("ReadOnly"), "mode": "", "propagation": "", "options": "",
                "anonymous": False, "create_source": False, "nocopy": False}
    if kind == "bind":
        if not source:
            raise invalid_config(kind, "field Source must not be empty")
        if not source.startswith("/"):
            raise invalid_config(kind, f"invalid mount path: '{source}' mount path must be absolute")
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
            raise invalid_config(kind, "field Source must not be specified")
        options = mount.get("TmpfsOptions") or {}
        words = []
        if options.get("SizeBytes"):
            if not isinstance(options["SizeBytes"], int) or options["SizeBytes"] < 0:
                raise invalid_config(kind, f"invalid tmpfs size: {options['SizeBytes']}")
            words.append(f"size={options['SizeBytes']}")
        if options.get("Mode"):
            words.append(f"mode={options['Mode']:o}")
        resolved["options"] = ",".join(["nosuid", "nodev"] + words)
    return resolved


def parse_tmpfs(path, options):
    """One `--tmpfs PATH[:OPTIONS]` / HostConfig.Tmpfs entry."""
    import re  # here, not above: the CLI imports this module on every `run`, and re costs it ~7 ms

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
