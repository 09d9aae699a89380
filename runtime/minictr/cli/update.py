"""update: new resource limits or restart policy for containers (live when they run)."""

import click

from minictr.cli.decorators import pass_ctx
from minictr.client import api_path
from minictr.errors import InvalidArgument


@click.command()
@click.option("-m", "--memory", help="Memory limit.")
@click.option("--memory-swap", help="Memory plus swap limit; -1: unlimited swap.")
@click.option("--cpus", help="Number of CPUs.")
@click.option("-c", "--cpu-shares", type=int, help="CPU shares (relative weight).")
@click.option("--cpu-period", type=int, help="CPU CFS period (microseconds).")
@click.option("--cpu-quota", type=int, help="CPU CFS quota (microseconds).")
@click.option("--cpuset-cpus", help="CPUs the container may run on (0-3, 0,1).")
@click.option("--pids-limit", type=int, help="Process (task) limit; -1: unlimited.")
@click.option("--restart", help="Restart policy: no, on-failure[:N], always, unless-stopped.")
@click.argument("containers", nargs=-1, required=True)
@pass_ctx
def update(ctx, restart, containers, **options):
    """Update configuration of one or more containers."""
    from minictr.cli.actions import each_container
    from minictr.spec import restart as restart_policy
    from minictr.spec.resources import host_config_fields

    body = host_config_fields(options)
    if restart:
        body["RestartPolicy"] = restart_policy.parse(restart)
    if not body:
        raise InvalidArgument("you must provide one or more flags when using this command")

    def request(ref):
        warnings = ctx.client.post(api_path("/containers/{}/update", ref), None, body).json().get("Warnings")
        for warning in warnings or []:
            click.echo(f"WARNING: {warning}", err=True)

    each_container(containers, request)
