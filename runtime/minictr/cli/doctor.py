"""`minictr doctor`: checks this machine for what minictr needs, client-side (no daemon)."""

import sys

import click


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
    results = checks.run_checks(data_root or paths.default_data_root())
    if format_ == "json":
        import json

        click.echo(json.dumps([r.as_dict() for r in results], indent=4))
    else:
        click.echo("\n".join(r.line() for r in results))
    sys.exit(1 if any(r.status == checks.FAIL for r in results) else 0)
