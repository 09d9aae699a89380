"""history and image prune: an image's steps, and removing images nothing uses."""

import json

import click

from minictr.cli.decorators import pass_ctx
from minictr.cli.template import TableHeader, render_rows
from minictr.client import api_path

DEFAULT_TABLE = "table {{.ID}}\\t{{.CreatedSince}}\\t{{.CreatedBy}}\\t{{.Size}}\\t{{.Comment}}"
_HEADERS = {"ID": "IMAGE", "CreatedSince": "CREATED", "CreatedAt": "CREATED AT", "CreatedBy": "CREATED BY",
            "Size": "SIZE", "Comment": "COMMENT"}


@click.command()
@click.option("-H", "--human", type=click.BOOL, default=True, help="Print sizes and dates in human readable format.")
@click.option("--no-trunc", is_flag=True, help="Don't truncate output.")
@click.option("-q", "--quiet", is_flag=True, help="Only show image IDs.")
@click.option("--format", "format_", default="", help="Format output using a custom template ('table', 'json', …).")
@click.argument("name")
@pass_ctx
def history(ctx, human, no_trunc, quiet, format_, name):
    """Show the history of an image."""

    entries = ctx.client.get(api_path("/images/{}/history", name))
    if quiet:
        for entry in entries:
            click.echo(entry["Id"] if no_trunc or entry["Id"] == "<missing>" else _short(entry["Id"]))
        return
    format_ = format_ if format_ and format_ != "table" else DEFAULT_TABLE
    rows = [HistoryRow(e, not no_trunc, human) for e in entries]
    table, text = render_rows(format_, rows, _Header())
    if not table:
        click.echo(text, nl=False)
        return
    click.echo(text.rstrip("\n"))


class HistoryRow:
    """One step as `history --format` templates see it (Docker's historyContext)."""

    template_fields = frozenset(_HEADERS)

    def __init__(self, entry, trunc, human):
        self.e, self.trunc, self.human = entry, trunc, human

    @property
    def ID(self):
        image_id = self.e["Id"]
        return _short(image_id) if self.trunc and image_id != "<missing>" else image_id

    @property
    def CreatedSince(self):
        from minictr.cli.format import ago

        return ago(self.e["Created"]) if self.human else self.CreatedAt

    @property
    def CreatedAt(self):
        from datetime import datetime, timezone

        return datetime.fromtimestamp(self.e["Created"], timezone.utc).astimezone().isoformat(timespec="seconds")

    @property
    def CreatedBy(self):
        from minictr.cli.container_format import ellipsis

        text = self.e["CreatedBy"].replace("\t", " ")
        return ellipsis(text, 45) if self.trunc else text

    @property
    def Size(self):
        from minictr.cli.container_format import human_size

        return human_size(self.e["Size"]) if self.human else str(self.e["Size"])

    @property
    def Comment(self):
        return self.e["Comment"]

    def to_json(self):
        return {name: getattr(self, name) for name in sorted(_HEADERS)}



def _short(image_id):
    return image_id.removeprefix("sha256:")[:12]


@click.command("prune")
@click.option("-a", "--all", "all_", is_flag=True, help="Remove all unused images, not just dangling ones.")
@click.option("-f", "--force", is_flag=True, help="Do not prompt for confirmation.")
@click.option("--filter", "filters", multiple=True, help='Provide filter values (e.g. "until=<timestamp>").')
@pass_ctx
def prune(ctx, all_, force, filters):
    """Remove unused images."""
    from minictr.cli.format import size
    from minictr.cli.volumes import confirm
    from minictr.errors import InvalidArgument

    query = {}
    for item in filters:
        key, _, value = item.partition("=")
        if not key:
            raise InvalidArgument(f"bad format of filter (expected name=value): {item}")
        query.setdefault(key, []).append(value)
    query["dangling"] = ["false" if all_ else "true"]
    warning = ("WARNING! This will remove all images without at least one container associated to them."
               if all_ else "WARNING! This will remove all dangling images.")
    if not force and not confirm(warning):
        return
    report = ctx.client.post("/images/prune", {"filters": json.dumps(query)}).json()
    deleted = report.get("ImagesDeleted") or []
    if deleted:
        click.echo("Deleted Images:")
        for item in deleted:
            for key, value in item.items():
                click.echo(f"{key.lower()}: {value}")
        click.echo()
    click.echo(f"Total reclaimed space: {size(report.get('SpaceReclaimed') or 0)}")


class _Header(TableHeader):
    titles = _HEADERS
