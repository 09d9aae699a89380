"""Times as Docker shows them to people ("3 minutes", "About an hour"), for the daemon's
Status strings and the CLI's CREATED column alike."""

import time

_UNITS = (("years", 31536000), ("months", 2592000), ("weeks", 604800), ("days", 86400),
          ("hours", 3600), ("minutes", 60))


def human_duration(seconds):
    seconds = max(0, seconds)
    for unit, size in _UNITS:
        if seconds >= 2 * size:
            return f"{int(seconds // size)} {unit}"
    if seconds >= 3600:
        return "About an hour"
    if seconds >= 60:
        return "About a minute"
    return "Less than a second" if seconds < 1 else f"{int(seconds)} seconds"


def since(unix_seconds):
    return human_duration(time.time() - unix_seconds)


def rfc3339_to_unix(text):
    """Whole seconds of an RFC 3339 UTC time such as 2026-11-27T19:40:05.123456789Z."""
    import calendar  # the daemon's need only: kept off the CLI's path

    return calendar.timegm(time.strptime(text[:19], "%Y-%m-%dT%H:%M:%S"))
