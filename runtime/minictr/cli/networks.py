"""Network commands: network create, ls, inspect, rm, prune, connect, disconnect."""

import sys

import click

from minictr.cli.context import each, inspect_each
from minictr.cli.decorators import pass_ctx
from minictr.cli.volumes import _pairs, confirm
from minictr.client import api_path


@click.command()
@click.option("-d", "--driver", default="bridge", show_default=True, help="Driver (bridge).")
@click.option("--subnet", help="Subnet in CIDR format (chosen clear of the others when not given).")
@click.option("--gateway", help="Gateway address of the subnet (default: its first address).")
@click.option("--ip-range", help="Allocate container addresses from this sub-range.")
@click.option("--aux-address", multiple=True, help="Reserve an address of the subnet (NAME=IP): never given out.")
@click.option("--internal", is_flag=True, help="No route out of the network.")
@click.option("--attachable", is_flag=True, help="Recorded, as Docker does (a swarm setting).")
@click.option("--label", multiple=True, help="Set metadata on the network (KEY=VALUE).")
@click.option("-o", "--opt", multiple=True, help="Set a driver option (KEY=VALUE), e.g. com.docker.network.driver.mtu.")
@click.argument("name")
@pass_ctx
def create(ctx, driver, subnet, gateway, ip_range, aux_address, internal, attachable, label, opt, name):
    """Create a network."""
    ipam = {k: v for k, v in {"Subnet": subnet, "Gateway": gateway, "IPRange": ip_range,
                              "AuxiliaryAddresses": _pairs(aux_address, "opt")}.items() if v}
    body = {"Name": name, "Driver": driver, "Internal": internal, "Attachable": attachable,
            "Labels": _pairs(label, "label"), "Options": _pairs(opt, "opt"),
            "IPAM": {"Driver": "default", "Config": [ipam] if ipam else []}}
    click.echo(ctx.client.post("/networks/create", body=body).json()["Id"])


@click.command("ls")
@click.option("-q", "--quiet", is_flag=True, help="Only display network IDs.")
@click.option("--no-trunc", is_flag=True, help="Do not truncate the IDs.")
@click.option("-f", "--filter", "filters", multiple=True, help="Filter: driver=, id=, label=, name=, type=custom|builtin.")
@pass_ctx
def ls(ctx, quiet, no_trunc, filters):
    """List networks."""
    from minictr.cli.filters import filters_query
    from minictr.cli.format import table

    query = {"filters": filters_query(filters)} if filters else None
    networks = ctx.client.get("/networks", query)
    ids = [n["Id"] if no_trunc else n["Id"][:12] for n in networks]
    if quiet:
        for network_id in ids:
            click.echo(network_id)
        return
    click.echo(table(["NETWORK ID", "NAME", "DRIVER", "SCOPE"],
                     [[i, n["Name"], n["Driver"], n["Scope"]] for i, n in zip(ids, networks)]))


@click.command()
@click.argument("names", nargs=-1, required=True)
@pass_ctx
def inspect(ctx, names):
    """Display detailed information on one or more networks, as JSON."""
    inspect_each(names, lambda name: ctx.client.get(api_path("/networks/{}", name)))


@click.command()
@click.argument("names", nargs=-1, required=True)
@pass_ctx
def rm(ctx, names):
    """Remove one or more networks (never one that containers are connected to)."""

    def remove(name):
        ctx.client.delete(api_path("/networks/{}", name))
        click.echo(name)

    if not each(names, remove):
        sys.exit(1)


@click.command()
@click.option("-f", "--force", is_flag=True, help="Do not prompt for confirmation.")
@click.option("--filter", "filters", multiple=True, help="Filter: label=K[=V].")
@pass_ctx
def prune(ctx, force, filters):
    """Remove all networks no container is connected to."""
    from minictr.cli.filters import filters_query

    if not force and not confirm("WARNING! This will remove all custom networks not used by at least one container."):
        return
    query = filters_query(filters) if filters else None
    report = ctx.client.post("/networks/prune", {"filters": query} if query else None).json()
    if report.get("NetworksDeleted"):
        click.echo("Deleted Networks:\n" + "\n".join(report["NetworksDeleted"]) + "\n")


@click.command()
@click.option("--ip", help="IPv4 address for the container on this network.")
@click.option("--alias", multiple=True, help="A network-scoped alias for the container.")
@click.option("--link", multiple=True, help="A link to another container (NAME[:ALIAS]), resolved on this network.")
@click.argument("network")
@click.argument("container")
@pass_ctx
def connect(ctx, ip, alias, link, network, container):
    """Connect a container to a network (live, when it runs)."""
    endpoint = {"Aliases": list(alias), "IPAMConfig": {"IPv4Address": ip} if ip else None, "Links": list(link)}
    ctx.client.post(api_path("/networks/{}/connect", network), body={"Container": container, "EndpointConfig": endpoint})


@click.command()
@click.option("-f", "--force", is_flag=True, help="Force the container to disconnect.")
@click.argument("network")
@click.argument("container")
@pass_ctx
def disconnect(ctx, force, network, container):
    """Disconnect a container from a network (its interface goes at once)."""
    ctx.client.post(api_path("/networks/{}/disconnect", network), body={"Container": container, "Force": force})


@click.group()
def network():
    """Manage networks."""


for _name, _command in (("create", create), ("ls", ls), ("list", ls), ("inspect", inspect), ("rm", rm),
                        ("remove", rm), ("prune", prune), ("connect", connect), ("disconnect", disconnect)):
    network.add_command(_command, _name)
