"""Times in Docker's words: RFC 3339 stamps, the API's `SECONDS[.NANOSECONDS]`, the docker CLI's
--since/--until values, and durations as people read them ("3 minutes", "About an hour").

No heavy import at module level: the CLI's CREATED and STATUS columns use this module on every `ps`.
"""

import time

from minictr.errors import InvalidArgument


def rfc3339(ns=None, *, local=False, trimmed=False):
    """NS (nanoseconds since the epoch; now by default) as Go's RFC3339NanoFixed: nine fractional
    digits, `Z` or `+hh:mm`; in UTC unless LOCAL. TRIMMED drops the fraction's trailing zeros
    (Go's RFC3339Nano, which Docker uses for image times)."""
    ns = time.time_ns() if ns is None else ns
    seconds, fraction = divmod(ns, 1_000_000_000)
    when = time.localtime(seconds) if local else time.gmtime(seconds)
    digits = f".{fraction:09d}"
    if trimmed:
        digits = digits.rstrip("0").rstrip(".")
    offset = when.tm_gmtoff
    zone = "Z" if offset == 0 else f"{'+' if offset > 0 else '-'}{abs(offset) // 3600:02d}:{abs(offset) % 3600 // 60:02d}"
    return time.strftime("%Y-%m-%dT%H:%M:%S", when) + digits + zone


def rfc3339_to_unix(text):
    """Whole seconds of an RFC 3339 UTC time such as 2026-11-27T19:40:05.123456789Z."""
    import calendar  # the daemon's need only: kept off the CLI's path

    return calendar.timegm(time.strptime(text[:19], "%Y-%m-%dT%H:%M:%S"))


def parse_unix_ns(text, name):
    """Nanoseconds since the epoch of the API's `since`/`until` (`SECONDS[.NANOSECONDS]`); None when empty."""
    if not text:
        return None
    seconds, _, fraction = text.partition(".")
    if not seconds.lstrip("-").isdigit() or (fraction and not fraction.isdigit()):
        raise InvalidArgument(f"invalid value for {name}: {text!r}: expected a unix timestamp (SECONDS[.NANOSECONDS])")
    return int(seconds) * 1_000_000_000 + int(fraction.ljust(9, "0")[:9] or 0)


# ---- --since/--until as the docker CLI sends them (api/types/time GetTimestamp) -----------------

_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}
_DURATION = r"([-+]?)((?:(?:\d+\.?\d*|\.\d+)(?:ns|us|µs|μs|ms|s|m|h))+)"
_DURATION_PART = r"(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)"
_DATE_TIME = r"(\d{4})-(\d\d)-(\d\d)(?:T(\d\d)(?::(\d\d)(?::(\d\d)(?:\.(\d+))?)?)?)?([zZ]|[+-]\d\d:\d\d)?"
_UNIX = r"\d+(?:\.\d+)?"


def parse_timestamp(value, now):
    """The API's `SECONDS[.NANOSECONDS]` for a --since/--until value: a Go duration before NOW
    (10m, 1h30m), an RFC 3339 date or time (local time without a zone), or unix seconds."""
    import re

    duration = _go_duration(value) if value != "0" else None
    if duration is not None:
        return str(int((now - duration) // 1))
    m = re.fullmatch(_DATE_TIME, value)
    if m:
        year, month, day, hour, minute, second, fraction, zone = m.groups()
        fields = (int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0))
        if zone is None:
            seconds = int(time.mktime(fields + (0, 0, -1)))  # the client's local time, as Docker
        else:
            import calendar

            seconds = calendar.timegm(fields)
            if zone not in "zZ":
                sign = 1 if zone[0] == "+" else -1
                seconds -= sign * (int(zone[1:3]) * 3600 + int(zone[4:6]) * 60)
        return f"{seconds}.{(fraction or '').ljust(9, '0')[:9]}"
    if "-" in value or not re.fullmatch(_UNIX, value):
        raise InvalidArgument(f'failed to parse value as time or duration: "{value}"')
    return value


def until_filter(values, now):
    """The newest time (unix seconds) a prune's or a list's `until` filter lets through, or None
    without one: a --since/--until value, one only (Docker's getUntilFromPruneFilters)."""
    if not values:
        return None
    if len(values) > 1:
        raise InvalidArgument("more than one until filter specified")
    return float(parse_timestamp(values[0], now))


def _go_duration(value):
    """Seconds of a Go duration (`1h30m`, `-10s`), or None if VALUE is not one."""
    import re

    m = re.fullmatch(_DURATION, value)
    if not m:
        return None
    seconds = sum(float(number) * _DURATION_UNITS[unit] for number, unit in re.findall(_DURATION_PART, m.group(2)))
    return -seconds if m.group(1) == "-" else seconds


# ---- durations as people read them --------------------------------------------------------------

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
    """How long ago UNIX_SECONDS was, in human_duration's words."""
    return human_duration(time.time() - unix_seconds)
