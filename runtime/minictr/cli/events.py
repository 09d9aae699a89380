"""`minictr events`: the daemon's events as they happen (or the past ones, with --since/--until)."""

import re
import time

import click

from minictr.cli.decorators import pass_ctx
from minictr.errors import InvalidArgument

_DURATION = re.compile(r"([0-9]*\.?[0-9]+)(ns|us|µs|ms|s|m|h)")
_UNIT_NS = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9}


@click.command()
@click.option("-f", "--filter", "filters", multiple=True, help="Filter output based on conditions provided (key=value).")
@click.option("--format", "format_", help="Format output using a Go template, or 'json'.")
@click.option("--since", help="Show all events created since timestamp.")
@click.option("--until", help="Stream events until this timestamp.")
@pass_ctx
def events(ctx, filters, format_, since, until):
    """Get real time events from the daemon."""
    from minictr.cli.filters import filters_query

    template = None
    if format_:
        from minictr.cli.template import Template

        template = Template("{{json .}}" if format_ == "json" else format_)
        template.execute(EventRow({}))  # a bad field fails now, as in Docker
    now = time.time()
    query = {"since": timestamp(since, now) if since else None, "until": timestamp(until, now) if until else None,
             "filters": filters_query(filters)}
    response = ctx.client.stream("GET", "/events", query)
    for event in response.json_lines():
        click.echo(template.execute(EventRow(event)) if template else line(event))
        click.get_text_stream("stdout").flush()


def line(event):
    """Docker's line: `2026-11-27T20:00:00.123456789Z container start <id> (image=…, name=…)`."""
    nanos = event.get("timeNano") or event.get("time", 0) * 10**9
    text = f"{rfc3339_nano_fixed(nanos)} {event.get('Type', '')} {event.get('Action', '')} {event.get('Actor', {}).get('ID', '')}"
    attributes = event.get("Actor", {}).get("Attributes") or {}
    if attributes:
        text += " (" + ", ".join(f"{k}={attributes[k]}" for k in sorted(attributes)) + ")"
    return text


def rfc3339_nano_fixed(nanos):
    """Go's RFC3339NanoFixed in local time: nine fractional digits, `Z` or `+hh:mm`."""
    seconds, fraction = divmod(nanos, 10**9)
    local = time.localtime(seconds)
    offset = local.tm_gmtoff
    zone = "Z" if offset == 0 else f"{'+' if offset > 0 else '-'}{abs(offset) // 3600:02d}:{abs(offset) % 3600 // 60:02d}"
    return time.strftime("%Y-%m-%dT%H:%M:%S", local) + f".{fraction:09d}" + zone


def timestamp(value, now):
    """The docker CLI's --since/--until values (a Go duration before now, an RFC 3339 date or
    time, or a unix timestamp) as the API's `SECONDS[.NANOSECONDS]`."""
    if value != "0" and _is_duration(value):
        return str(int(now - _duration_ns(value) / 1e9))
    if re.fullmatch(r"\d+(\.\d{1,9})?", value):
        return value
    m = re.fullmatch(r"(\d{4}-\d{2}-\d{2})(?:T(\d{2})(?::(\d{2}))?(?::(\d{2})(?:\.(\d{1,9}))?)?)?"
                     r"(Z|z|[+-]\d{2}:\d{2})?", value)
    if not m:
        raise InvalidArgument(f'failed to parse value as time or duration: "{value}"')
    date, hour, minute, second, fraction, zone = m.groups()
    struct = time.strptime(f"{date} {hour or 0}:{minute or 0}:{second or 0}", "%Y-%m-%d %H:%M:%S")
    if zone:
        import calendar

        seconds = calendar.timegm(struct)
        if zone not in ("Z", "z"):
            sign = 1 if zone[0] == "+" else -1
            seconds -= sign * (int(zone[1:3]) * 3600 + int(zone[4:6]) * 60)
    else:
        seconds = int(time.mktime(struct))
    return f"{seconds}.{(fraction or '').ljust(9, '0')}"


def _is_duration(value):
    text = value.lstrip("+-")
    return text == "0" or (bool(text) and _DURATION.sub("", text) == "" and bool(_DURATION.match(text)))


def _duration_ns(value):
    sign = -1 if value.startswith("-") else 1
    return sign * sum(float(n) * _UNIT_NS[unit] for n, unit in _DURATION.findall(value.lstrip("+-")))


class EventRow:
    """An event as `--format` templates see it (Docker's events.Message)."""

    template_fields = frozenset({"Status", "ID", "From", "Type", "Action", "Actor", "Scope", "Time", "TimeNano"})
    template_type = "events.Message"

    def __init__(self, event):
        self.event = event
        self.Status, self.ID, self.From = event.get("status", ""), event.get("id", ""), event.get("from", "")
        self.Type, self.Action = event.get("Type", ""), event.get("Action", "")
        actor = event.get("Actor") or {}
        self.Actor = {"ID": actor.get("ID", ""), "Attributes": actor.get("Attributes") or {}}
        self.Scope, self.Time, self.TimeNano = event.get("scope", ""), event.get("time", 0), event.get("timeNano", 0)

    def to_json(self):
        return self.event
