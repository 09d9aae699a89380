"""Healthchecks in Docker's words: the `--health-*` flags as the docker CLI turns them into
Config.Healthcheck, the daemon's check of that field, its merge with the image's, and the
HEALTHCHECK instruction of `commit --change` (moby's daemon/container.go validateHealthCheck,
daemon/commit.go merge, buildkit's parseHealthcheck).

A Healthcheck is {Test, Interval, Timeout, StartPeriod, StartInterval, Retries}, durations in
nanoseconds. Test: ["CMD", argv…], ["CMD-SHELL", "command"], ["NONE"] (no check, not even the
image's), or [] / absent (the image's). A zero duration or retry count means "the image's, else
Docker's default". Pure: both the CLI and the daemon use it.
"""

from minictr.errors import InvalidArgument

# Docker's defaults (daemon/health.go) for a zero field.
DEFAULT_INTERVAL = 30_000_000_000
DEFAULT_TIMEOUT = 30_000_000_000
DEFAULT_START_PERIOD = 0
DEFAULT_START_INTERVAL = 5_000_000_000
DEFAULT_RETRIES = 3
MINIMUM_DURATION = 1_000_000  # 1ms: containertypes.MinimumDuration

DURATIONS = ("Interval", "Timeout", "StartPeriod", "StartInterval")
FIELDS = ("Test",) + DURATIONS + ("Retries",)

# --health-* option (as click names it) -> the HealthConfig field it sets.
FLAGS = {"health_interval": "Interval", "health_timeout": "Timeout", "health_start_period": "StartPeriod",
         "health_start_interval": "StartInterval"}

_UNITS = {"ns": 1, "us": 1_000, "µs": 1_000, "μs": 1_000, "ms": 1_000_000, "s": 1_000_000_000,
          "m": 60_000_000_000, "h": 3_600_000_000_000}
_PART = r"(\d*)(?:\.(\d*))?(ns|us|µs|μs|ms|s|m|h)"


def parse_duration(text):
    """Nanoseconds of a Go duration (`30s`, `1m30s`, `1.5s`, `500ms`, `-2s`, `0`), exactly as
    time.ParseDuration; InvalidArgument in its words otherwise."""
    import re  # off the path of a `run` without health flags (the CLI starts fast)

    body = text[1:] if text[:1] in "+-" else text
    if body == "0":
        return 0
    total, position = 0, 0
    while position < len(body):
        m = re.compile(_PART).match(body, position)
        if not m or not (m.group(1) or m.group(2)):
            raise InvalidArgument(f'time: invalid duration "{text}"')
        whole, fraction, unit = m.group(1) or "0", m.group(2) or "", m.group(3)
        scale = _UNITS[unit]
        total += int(whole) * scale + (int(fraction) * scale // 10 ** len(fraction) if fraction else 0)
        position = m.end()
    if not body:
        raise InvalidArgument(f'time: invalid duration "{text}"')
    return -total if text.startswith("-") else total


def format_duration(ns):
    """Go's Duration.String(): 30s, 1.5s, 500ms, 1m30s, 1h0m0s, 0s."""
    if ns == 0:
        return "0s"
    sign, ns = ("-", -ns) if ns < 0 else ("", ns)
    if ns < 1_000_000_000:
        for unit, scale in (("ms", 1_000_000), ("µs", 1_000), ("ns", 1)):
            if ns >= scale:
                return sign + _decimal(ns, scale) + unit
    hours, rest = divmod(ns, 3_600_000_000_000)
    minutes, rest = divmod(rest, 60_000_000_000)
    seconds = _decimal(rest, 1_000_000_000) + "s"
    if hours:
        return f"{sign}{hours}h{minutes}m{seconds}"
    if minutes:
        return f"{sign}{minutes}m{seconds}"
    return sign + seconds


def _decimal(value, scale):
    whole, fraction = divmod(value, scale)
    digits = str(fraction).rjust(len(str(scale)) - 1, "0").rstrip("0")
    return f"{whole}.{digits}" if digits else str(whole)


def from_options(options):
    """Config.Healthcheck for the parsed `run`/`create` options, as the docker CLI builds it
    (cli/command/container/opts.go), or None when no health option was given."""
    command = options.get("health_cmd") or ""
    durations = {field: parse_duration(options[name]) if options.get(name) else 0 for name, field in FLAGS.items()}
    retries = options.get("health_retries") or 0
    asked = bool(command) or retries != 0 or any(durations.values())
    if options.get("no_healthcheck"):
        if asked:
            raise InvalidArgument("--no-healthcheck conflicts with --health-* options")
        return {"Test": ["NONE"]}
    if not asked:
        return None
    for name, field in FLAGS.items():
        if durations[field] < 0:
            raise InvalidArgument(f"--{name.replace('_', '-')} cannot be negative")
    if retries < 0:
        raise InvalidArgument("--health-retries cannot be negative")
    return {"Test": ["CMD-SHELL", command] if command else None, **durations, "Retries": retries}


def check(health):
    """The daemon's check of a Config.Healthcheck (None passes), in Docker's words."""
    if not health:
        return
    for field in DURATIONS:
        value = health.get(field) or 0
        if value != 0 and value < MINIMUM_DURATION:
            raise InvalidArgument(f"{field} in Healthcheck cannot be less than {format_duration(MINIMUM_DURATION)}")
    if (health.get("Retries") or 0) < 0:
        raise InvalidArgument("Retries in Healthcheck cannot be negative")
    test = health.get("Test") or []
    if test and test[0] not in ("CMD", "CMD-SHELL", "NONE"):
        raise InvalidArgument(f"unknown healthcheck type {test[0]!r} (expected CMD, CMD-SHELL or NONE)")
    if test and test[0] in ("CMD", "CMD-SHELL") and len(test) < 2:
        raise InvalidArgument(f"healthcheck {test[0]} has no command")


def merge(container, image):
    """The container's Healthcheck over the image's, as Docker's create and commit merge them:
    a container's empty Test or zero field takes the image's; None when neither has one."""
    if not (container or image):
        return None
    merged = dict(container or {})
    for field in FIELDS:
        if not merged.get(field):
            merged[field] = (image or {}).get(field)
    return compact(merged)


def compact(health):
    """A Healthcheck as Docker's JSON shows it: its zero fields left out (Go's omitempty)."""
    return {field: health[field] for field in FIELDS if health.get(field)}


def probe_command(health, shell=None):
    """The argv a probe runs, or None when there is no check (no Test, `NONE`, an unknown type)."""
    test = (health or {}).get("Test") or []
    if len(test) < 2 or test[0] not in ("CMD", "CMD-SHELL"):
        return None
    if test[0] == "CMD-SHELL":
        return list(shell or ["/bin/sh", "-c"]) + test[1:]
    return test[1:]


def settings(health):
    """(interval, timeout, start period, start interval, retries) of a Healthcheck, Docker's
    defaults for its zero fields; durations in nanoseconds."""
    health = health or {}
    return (health.get("Interval") or DEFAULT_INTERVAL, health.get("Timeout") or DEFAULT_TIMEOUT,
            health.get("StartPeriod") or DEFAULT_START_PERIOD, health.get("StartInterval") or DEFAULT_START_INTERVAL,
            health.get("Retries") if (health.get("Retries") or 0) > 0 else DEFAULT_RETRIES)


# ---- HEALTHCHECK in `commit --change` ------------------------------------------------------

_INSTRUCTION_FLAGS = {"interval": "Interval", "timeout": "Timeout", "start-period": "StartPeriod",
                      "start-interval": "StartInterval", "retries": "Retries"}


def parse_instruction(argument):
    """The Healthcheck of `HEALTHCHECK [--interval=D …] CMD command` (or `CMD ["exe", …]`) and of
    `HEALTHCHECK NONE`, as a Dockerfile's."""
    words = argument.split(None, 1)
    if words and words[0].upper() == "NONE":
        if len(words) > 1:
            raise InvalidArgument("HEALTHCHECK NONE takes no arguments")
        return {"Test": ["NONE"]}
    health = {"Test": None, "Interval": 0, "Timeout": 0, "StartPeriod": 0, "StartInterval": 0, "Retries": 0}
    rest = argument.strip()
    while rest.startswith("--"):
        flag, _, rest = rest.partition(" ")
        rest = rest.lstrip()
        name, equals, value = flag[2:].partition("=")
        if name not in _INSTRUCTION_FLAGS or not equals:
            raise InvalidArgument(f"HEALTHCHECK: unknown flag: {flag}" if name not in _INSTRUCTION_FLAGS
                                  else f"HEALTHCHECK: missing a value on flag: {flag}")
        health[_INSTRUCTION_FLAGS[name]] = _instruction_value(name, value)
    kind, _, command = rest.partition(" ")
    if kind.upper() != "CMD":
        raise InvalidArgument(f'Unknown type "{kind}" in HEALTHCHECK (try CMD)')
    command = command.strip()
    argv = _json_argv(command)
    if argv is not None:
        health["Test"] = ["CMD"] + argv
    else:
        health["Test"] = ["CMD-SHELL", command]
    if not command or argv == []:
        raise InvalidArgument("Missing command after HEALTHCHECK CMD")
    return compact(health)


def _instruction_value(name, value):
    if name == "retries":
        if not value.lstrip("-").isdigit():
            raise InvalidArgument(f'HEALTHCHECK --retries: invalid syntax "{value}"')
        if int(value) < 1:
            raise InvalidArgument(f"--retries must be at least 1 (not {int(value)})")
        return int(value)
    ns = parse_duration(value)
    if ns != 0 and ns < MINIMUM_DURATION:
        raise InvalidArgument(f'Interval "{name}" cannot be less than {format_duration(MINIMUM_DURATION)}')
    return ns


def _json_argv(text):
    if not text.startswith("["):
        return None
    import json

    try:
        words = json.loads(text)
    except ValueError:
        return None
    return words if isinstance(words, list) and all(isinstance(w, str) for w in words) else None

