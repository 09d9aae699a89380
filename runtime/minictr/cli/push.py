"""push: an image to a registry, with docker push's progress."""

import sys

import click

from minictr.cli.decorators import pass_ctx
from minictr.client import api_path
from minictr.errors import MinictrError


@click.command()
@click.option("-q", "--quiet", is_flag=True, help="Suppress verbose output.")
@click.option("-a", "--all-tags", is_flag=True, help="Push all tags of an image to the repository.")
@click.argument("name")
@pass_ctx
def push(ctx, quiet, all_tags, name):
    """Upload an image to a registry."""
    from minictr.cli.login import registry_auth_header
    from minictr.cli.pull import _PlainProgress, _TerminalProgress
    from minictr.spec import reference as references

    if all_tags:
        raise MinictrError("push --all-tags is not supported")
    ref = references.parse(name, default_tag=False)
    if ref.tag is None and ref.digest is None:
        ref = references.parse(name)
        if not quiet:
            click.echo(f"Using default tag: {ref.tag}")
    response = ctx.client.stream("POST", api_path("/images/{}/push", ref.familiar_name), {"tag": ref.tag or ""},
                                 headers=registry_auth_header(ref.domain))
    out = sys.stdout
    render = _TerminalProgress(out) if out.isatty() and not quiet else _PlainProgress(out, quiet)
    digest = None
    for message in response.json_lines():
        if "error" in message:
            render.finish()
            raise MinictrError((message.get("errorDetail") or {}).get("message") or message["error"])
        if "aux" in message:
            digest = message["aux"].get("Digest")
            continue
        render.show(message)
    render.finish()
    if quiet:
        click.echo(f"{ref.familiar()}" if digest is None else f"{ref.familiar_name}:{ref.tag}")
