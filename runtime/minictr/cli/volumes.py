"""Volume commands: volume create, ls, inspect, rm, prune."""

import sys

import click

from minictr.cli.context import each, inspect_each
from minictr.cli.decorators import pass_ctx
from minictr.client import api_path
from minictr.errors import InvalidArgument


def _pairs(items, what):
    """`K=V` flags as a dict (`K` alone is K="", as Docker's labels)."""
    result = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not key or (what == "opt" and not sep):
            raise InvalidArgument(f"invalid {what} {item!r}: expected KEY=VALUE")
        result[key] = value
    return result


@click.command()
@click.option("-d", "--driver", default="local", show_default=True, help="Volume driver name.")
@click.option("--label", multiple=True, help="Set metadata for a volume (KEY=VALUE).")
@click.option("-o", "--opt", multiple=True, help="Driver options: type=tmpfs,o=size=…; type=none,o=bind,device=/dir.")
@click.argument("name", required=False)
@pass_ctx
def create(ctx, driver, label, opt, name):
    """Create a volume (a random name when NAME is not given)."""
    body = {"Name": name or "", "Driver": driver, "Labels": _pairs(label, "label"), "DriverOpts": _pairs(opt, "opt")}
    click.echo(ctx.client.post("/volumes/create", body=body).json()["Name"])


@click.command("ls")
@click.option("-q", "--quiet", is_flag=True, help="Only display volume names.")
@click.option("-f", "--filter", "filters", multiple=True, help="Filter: dangling=true|false, name=, label=K[=V], driver=.")
@pass_ctx
def ls(ctx, quiet, filters):
    """List volumes."""
    from minictr.cli.filters import filters_query
    from minictr.cli.format import table

    query = {"filters": filters_query(filters)} if filters else None
    volumes = ctx.client.get("/volumes", query)["Volumes"]
    if quiet:
        for volume in volumes:
            click.echo(volume["Name"])
        return
    click.echo(table(["DRIVER", "VOLUME NAME"], [[v["Driver"], v["Name"]] for v in volumes]))


@click.command()
@click.argument("names", nargs=-1, required=True)
@pass_ctx
def inspect(ctx, names):
    """Display detailed information on one or more volumes, as JSON."""
    inspect_each(names, lambda name: ctx.client.get(api_path("/volumes/{}", name)))


@click.command()
@click.option("-f", "--force", is_flag=True, help="Do not fail on a volume that does not exist.")
@click.argument("names", nargs=-1, required=True)
@pass_ctx
def rm(ctx, force, names):
    """Remove one or more volumes (never one that a container uses)."""

    def remove(name):
        ctx.client.delete(api_path("/volumes/{}", name), {"force": int(force)})
        click.echo(name)

    if not each(names, remove):
        sys.exit(1)


@click.command()
@click.option("-a", "--all", "all_", is_flag=True, help="Remove all unused volumes, not just anonymous ones.")
@click.option("-f", "--force", is_flag=True, help="Do not prompt for confirmation.")
@click.option("--filter", "filters", multiple=True, help="Filter: label=K[=V], label!=K[=V].")
@pass_ctx
def prune(ctx, all_, force, filters):
    """Remove unused local volumes (only anonymous ones unless -a)."""
    from minictr.cli.filters import filters_query
    from minictr.cli.format import size

    what = "all local volumes" if all_ else "anonymous local volumes"
    if not force and not confirm(f"WARNING! This will remove {what} not used by at least one container."):
        return
    query = filters_query(list(filters) + (["all=true"] if all_ else []))
    report = ctx.client.post("/volumes/prune", {"filters": query} if query else None).json()
    if report.get("VolumesDeleted"):
        click.echo("Deleted Volumes:\n" + "\n".join(report["VolumesDeleted"]) + "\n")
    click.echo(f"Total reclaimed space: {size(report.get('SpaceReclaimed') or 0)}")


def confirm(warning):
    """Docker's prompt before a prune: anything but y/Y (or no terminal input) is a no."""
    click.echo(f"{warning}\nAre you sure you want to continue? [y/N] ", nl=False)
    answer = sys.stdin.readline().strip().lower()
    return answer in ("y", "yes")


@click.group()
def volume():
    """Manage volumes."""


volume.add_command(create, "create")
volume.add_command(ls, "ls")
volume.add_command(ls, "list")
volume.add_command(inspect, "inspect")
volume.add_command(rm, "rm")
volume.add_command(rm, "remove")
volume.add_command(prune, "prune")
