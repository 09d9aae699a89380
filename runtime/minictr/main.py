"""The `minictr` command: the client CLI (minictr.cli, which only talks to a daemon) and the two
commands that work on this host itself, `daemon` and `doctor`. This is the one module that knows
both sides; the host-side code is imported only when one of those two runs."""

import os
import sys


def main():
    from minictr.cli import main as run_cli

    run_cli(host_commands=_host_commands)


def _host_commands():
    """The click commands `daemon` and `doctor` (click is imported only off the CLI's fast path)."""
    import click

    @click.command()
    @click.option("-H", "--host", help="unix://PATH to listen on, as dockerd -H (default: the client's -H, "
                                       "MINICTR_HOST, or the default socket).")
    @click.option("--data-root", help="Where images and containers are kept.")
    @click.option("--unavailable-limits", type=click.Choice(["refuse", "warn"]), envvar="MINICTR_UNAVAILABLE_LIMITS",
                  help="A limit this machine cannot enforce: refuse the container (default) or warn and run without.")
    @click.option("--insecure-registry", multiple=True, metavar="HOST[:PORT]",
                  help="A registry that may be reached over plain HTTP (repeatable; loopback ones always may).")
    @click.pass_context
    def daemon(click_ctx, host, data_root, unavailable_limits, insecure_registry):
        """Run the daemon in the foreground (rootless when started by an ordinary user)."""
        from minictr.daemon import run

        sys.exit(run(host or click_ctx.obj.host, data_root, unavailable_limits=unavailable_limits,
                     insecure_registries=insecure_registry))

    @click.command()
    @click.option("--data-root", help="The data root the daemon will use (default: the daemon's default).")
    @click.option("--format", "format_", type=click.Choice(["text", "json"]), default="text", help="Output format.")
    @click.option("--apparmor-profile", is_flag=True,
                  help="Print the AppArmor profile that lets minictr create user namespaces, and exit.")
    def doctor(data_root, format_, apparmor_profile):
        """Check this machine for everything minictr needs; one line per check, with the fix.

        Exits 0 when nothing FAILs (warnings say what works with less)."""
        from minictr import doctor as checks
        from minictr import paths

        if apparmor_profile:
            click.echo(checks.apparmor_profile(), nl=False)
            return
        results = checks.run_checks(data_root or paths.default_data_root(), os.environ)
        if format_ == "json":
            import json

            click.echo(json.dumps([r.as_dict() for r in results], indent=4))
        else:
            click.echo("\n".join(r.line() for r in results))
        sys.exit(1 if any(r.status == checks.FAIL for r in results) else 0)

    return [daemon, doctor]
