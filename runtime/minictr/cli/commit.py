"""commit and tag: new images from a container's changes, new names for an image."""

import click

from minictr.cli.decorators import pass_ctx
from minictr.client import api_path
from minictr.errors import InvalidArgument


@click.command()
@click.option("-a", "--author", default="", help='Author (e.g., "John Hannibal Smith <hannibal@a-team.com>").')
@click.option("-c", "--change", multiple=True, help="Apply Dockerfile instruction to the created image.")
@click.option("-m", "--message", default="", help="Commit message.")
@click.option("-p", "--pause", type=click.BOOL, default=True, show_default=True,
              help="Pause container during commit.")
@click.argument("container")
@click.argument("reference", required=False)
@pass_ctx
def commit(ctx, author, change, message, pause, container, reference):
    """Create a new image from a container's changes."""
    query = {"container": container, "comment": message, "author": author, "pause": int(pause),
             "changes": list(change)}
    if reference:
        repo, tag = split_reference(reference)
        query.update(repo=repo, tag=tag)
    click.echo(ctx.client.post("/commit", query).json()["Id"])


@click.command()
@click.argument("source")
@click.argument("target")
@pass_ctx
def tag(ctx, source, target):
    """Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE."""
    repo, tag_ = split_reference(target)
    ctx.client.post(api_path("/images/{}/tag", source), {"repo": repo, "tag": tag_})


def split_reference(reference):
    """REPO[:TAG] as the docker CLI splits it (a digest cannot be a target)."""
    if "@" in reference:
        raise InvalidArgument(f"refusing to create a tag with a digest reference: {reference}")
    name, colon, tag_ = reference.rpartition(":")
    if not colon or "/" in tag_:
        return reference, ""
    return name, tag_
