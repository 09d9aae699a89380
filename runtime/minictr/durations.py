"""Times as Docker shows them to people ("3 minutes", "About an hour"), for the daemon's
Status strings and the CLI's CREATED column alike."""

import time

def human_duration(seconds):
    """go-units' HumanDuration, word for word as Docker prints it."""
    whole = int(seconds)
    if whole < 1:
        return "Less than a second"
    if whole == 1:
        return "1 second"
    if whole < 60:
        return f"{whole} seconds"
    minutes = int(seconds / 60)
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = int(seconds / 3600 + 0.5)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{int(hours / 24 / 365)} years"


def since(unix_seconds):
    return human_duration(time.time() - unix_seconds)


def rfc3339_to_unix(text):
    """Whole seconds of an RFC 3339 UTC time such as 2026-11-27T19:40:05.123456789Z."""
    import calendar  # the daemon's need only: kept off the CLI's path

    return calendar.timegm(time.strptime(text[:19], "%Y-%m-%dT%H:%M:%S"))
