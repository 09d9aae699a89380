"""system df: the disk space images, containers and local volumes take, as Docker's tables."""

import click

from minictr.cli.decorators import pass_ctx
from minictr.cli.template import TableHeader, render_rows

DEFAULT_TABLE = "table {{.Type}}\\t{{.TotalCount}}\\t{{.Active}}\\t{{.Size}}\\t{{.Reclaimable}}"
_HEADERS = {"Type": "TYPE", "TotalCount": "TOTAL", "Active": "ACTIVE", "Size": "SIZE", "Reclaimable": "RECLAIMABLE"}
_ACTIVE_STATES = ("running", "paused", "restarting")


@click.command()
@click.option("-v", "--verbose", is_flag=True, help="Show detailed information on space usage.")
@click.option("--format", "format_", default="", help="Format output using a custom template ('table', 'json', …).")
@pass_ctx
def df(ctx, verbose, format_):
    """Show docker disk usage."""

    usage = ctx.client.get("/system/df")
    if verbose and not format_:
        click.echo(_verbose(usage))
        return
    format_ = format_ if format_ and format_ != "table" else DEFAULT_TABLE
    table, text = render_rows(format_, summary_rows(usage), _Header())
    if not table:
        click.echo(text, nl=False)
        return
    click.echo(text.rstrip("\n"))


def human_size(n):
    """go-units HumanSize: decimal units, 4 significant digits (`16.43MB`)."""
    from minictr.cli.container_format import human_size as with_precision

    return with_precision(n, 4)


def _reclaimable(reclaimable, total, percent=True):
    text = human_size(reclaimable)
    return f"{text} ({reclaimable * 100 // total}%)" if percent and total > 0 else text


class SummaryRow:
    template_fields = frozenset(_HEADERS)

    def __init__(self, type_, total, active, size, reclaimable):
        self.Type, self.TotalCount, self.Active = type_, str(total), str(active)
        self.Size, self.Reclaimable = size, reclaimable

    def to_json(self):
        return {name: getattr(self, name) for name in sorted(_HEADERS)}



def summary_rows(usage):
    images = usage.get("Images") or []
    layers = usage.get("LayersSize") or 0
    used = sum(i["Size"] - i["SharedSize"] for i in images if i.get("Containers") and i["SharedSize"] != -1)
    containers = usage.get("Containers") or []
    c_total = sum(c.get("SizeRw") or 0 for c in containers)
    c_active = [c for c in containers if c.get("State") in _ACTIVE_STATES]
    c_reclaimable = c_total - sum(c.get("SizeRw") or 0 for c in c_active)
    volumes = usage.get("Volumes") or []
    v_sizes = [max(v["UsageData"]["Size"], 0) for v in volumes]
    v_active = [v for v in volumes if v["UsageData"]["RefCount"] > 0]
    v_reclaimable = sum(max(v["UsageData"]["Size"], 0) for v in volumes if v["UsageData"]["RefCount"] == 0)
    cache = usage.get("BuildCache") or []
    return [
        SummaryRow("Images", len(images), sum(1 for i in images if i.get("Containers")), human_size(layers),
                   _reclaimable(layers - used, layers)),
        SummaryRow("Containers", len(containers), len(c_active), human_size(c_total),
                   _reclaimable(c_reclaimable, c_total)),
        SummaryRow("Local Volumes", len(volumes), len(v_active), human_size(sum(v_sizes)),
                   _reclaimable(v_reclaimable, sum(v_sizes))),
        SummaryRow("Build Cache", len(cache), 0, human_size(0), human_size(0)),
    ]


def _verbose(usage):
    from minictr.cli.format import ago, table

    images = []
    for image in usage.get("Images") or []:
        image_id = image["Id"].removeprefix("sha256:")[:12]
        shared = image["SharedSize"]
        for ref in image["RepoTags"] or ["<none>:<none>"]:
            repo, _, tag = ref.rpartition(":")
            images.append([repo, tag, image_id, ago(image["Created"]), human_size(image["Size"]),
                           human_size(shared), human_size(image["Size"] - shared), image.get("Containers", 0)])
    containers = []
    for c in usage.get("Containers") or []:
        command = c.get("Command") or ""
        command = f'"{command[:19]}…"' if len(command) > 20 else f'"{command}"'
        volumes = sum(1 for m in c.get("Mounts") or [] if m.get("Type") == "volume")
        containers.append([c["Id"][:12], c.get("Image", ""), command, volumes, human_size(c.get("SizeRw") or 0),
                           ago(c["Created"]), c.get("Status", ""), ",".join(n.lstrip("/") for n in c.get("Names") or [])])
    volumes = [[v["Name"], v["UsageData"]["RefCount"], human_size(max(v["UsageData"]["Size"], 0))]
               for v in usage.get("Volumes") or []]
    return "\n".join([
        "Images space usage:", "",
        table(["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE", "SHARED SIZE", "UNIQUE SIZE", "CONTAINERS"], images),
        "", "Containers space usage:", "",
        table(["CONTAINER ID", "IMAGE", "COMMAND", "LOCAL VOLUMES", "SIZE", "CREATED", "STATUS", "NAMES"], containers),
        "", "Local Volumes space usage:", "",
        table(["VOLUME NAME", "LINKS", "SIZE"], volumes),
        "", "Build cache usage: 0B", "",
        table(["CACHE ID", "CACHE TYPE", "SIZE", "CREATED", "LAST USED", "USAGE", "SHARED"], []),
    ])


class _Header(TableHeader):
    titles = _HEADERS
