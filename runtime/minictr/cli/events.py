"""`minictr events`: the daemon's events as they happen (or the past ones, with --since/--until)."""

import time

import click

from minictr.cli.decorators import pass_ctx
from minictr.spec.times import parse_timestamp, rfc3339


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
    query = {"since": parse_timestamp(since, now) if since else None,
             "until": parse_timestamp(until, now) if until else None,
             "filters": filters_query(filters)}
    response = ctx.client.stream("GET", "/events", query)
    for event in response.json_lines():
        click.echo(template.execute(EventRow(event)) if template else line(event))
        click.get_text_stream("stdout").flush()


def line(event):
    """Docker's line: `2026-11-27T20:00:00.123456789Z container start <id> (image=…, name=…)`."""
    nanos = event.get("timeNano") or event.get("time", 0) * 10**9
    text = f"{rfc3339(nanos, local=True)} {event.get('Type', '')} {event.get('Action', '')} {event.get('Actor', {}).get('ID', '')}"
    attributes = event.get("Actor", {}).get("Attributes") or {}
    if attributes:
        text += " (" + ", ".join(f"{k}={attributes[k]}" for k in sorted(attributes)) + ")"
    return text


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
