"""Names of containers, networks and volumes as Docker checks them.

The patterns are compiled (and cached by re) where they are used: the CLI imports this module on
every `run` with a volume, and re would cost it ~7 ms."""

from minictr.errors import InvalidArgument

_VALID = r"^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$"  # one leading `/` allowed
_VOLUME_NAME = r"^[a-zA-Z0-9][a-zA-Z0-9_.-]+$"


def check_name(name):
    """NAME without its leading `/`; InvalidArgument in Docker's words if it is not a valid name."""
    import re

    if not re.match(_VALID, name):
        raise InvalidArgument(f"Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
    return name.lstrip("/")


def check_volume_name(name):
    """A local volume's name, as Docker's local driver checks it."""
    import re

    if not re.match(_VOLUME_NAME, name):
        raise InvalidArgument(
            f'create {name}: "{name}" includes invalid characters for a local volume name, only '
            '"[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, use absolute path')
