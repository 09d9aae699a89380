"""`--filter key=value` flags, as the docker CLI turns them into the API's `filters` query."""

from minictr import wire
from minictr.errors import InvalidArgument


def filters_query(pairs):
    """The JSON for a `filters` query ({key: [values]}), or None when there are no filters."""
    filters = {}
    for pair in pairs:
        if not pair:
            continue
        key, sep, value = pair.partition("=")
        if not sep:
            raise InvalidArgument(f"bad format of filter (expected name=value): {pair}")
        # Docker lower-cases the key and trims both sides.
        values = filters.setdefault(key.strip().lower(), [])
        if value.strip() not in values:
            values.append(value.strip())
    return wire.dumps(filters) if filters else None
