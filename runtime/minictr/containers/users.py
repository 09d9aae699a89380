"""`-u USER[:GROUP]` resolved against the image's own /etc/passwd and /etc/group, as Docker does."""

import os

from minictr.errors import InvalidArgument


def _read_layered(layer_dirs, relpath):
    """A file's lines as the container would see them: the top-most layer that has it wins."""
    for layer in layer_dirs:
        path = os.path.join(layer, relpath)
        # Never follow a symlink planted in a layer out to the host's files.
        if os.path.islink(path) or not os.path.isfile(path):
            if os.path.lexists(path):
                return []
            continue
        with open(path, errors="replace") as f:
            return [line.rstrip("\n").split(":") for line in f if line.strip() and not line.startswith("#")]
    return []


def resolve_user(spec, layer_dirs, group_add=()):
    """(uid, gid, supplementary gids) for a user spec such as "", "1000", "nobody", "app:staff";
    GROUP_ADD (HostConfig.GroupAdd, `--group-add`) are more groups, names or numbers."""
    user, _, group = (spec or "0").partition(":")
    passwd = _read_layered(layer_dirs, "etc/passwd")
    groups = _read_layered(layer_dirs, "etc/group")
    uid, gid, name = _find_user(user, passwd)
    if group:
        gid = _find_group(group, groups)
    supplementary = [int(g[2]) for g in groups
                     if len(g) >= 4 and name and name in g[3].split(",") and g[2].isdigit()]
    supplementary += [_added_group(g, groups) for g in group_add or ()]
    return uid, gid, sorted(set(supplementary) - {gid})


def _find_user(user, passwd):
    for entry in passwd:
        if len(entry) >= 4 and (entry[0] == user or (user.isdigit() and entry[2] == user)):
            return int(entry[2]), int(entry[3]), entry[0]
    if user.isdigit():
        return int(user), 0, None
    raise InvalidArgument(f"unable to find user {user}: no matching entries in passwd file")


def _find_group(group, groups):
    for entry in groups:
        if len(entry) >= 3 and (entry[0] == group or (group.isdigit() and entry[2] == group)):
            return int(entry[2])
    if group.isdigit():
        return int(group)
    raise InvalidArgument(f"unable to find group {group}: no matching entries in group file")


def _added_group(group, groups):
    """A --group-add entry: a name of the image's /etc/group, or any number (libcontainer's
    GetAdditionalGroups, in its words)."""
    group = str(group)
    for entry in groups:
        if len(entry) >= 3 and entry[0] == group and entry[2].isdigit():
            return int(entry[2])
    if group.isdigit() and int(group) < 2**32 - 1:
        return int(group)
    raise InvalidArgument(f"Unable to find group {group}: no matching entries in group file")
