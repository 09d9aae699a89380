"""Image commands: images, rmi, import, load, image inspect."""

import sys

import click

from minictr.cli.context import each, inspect_each
from minictr.cli.decorators import pass_ctx
from minictr.client import api_path
from minictr.errors import MinictrError


@click.command()
@click.option("-q", "--quiet", is_flag=True, help="Only show image IDs.")
@click.option("--no-trunc", is_flag=True, help="Don't truncate output.")
@pass_ctx
def images(ctx, quiet, no_trunc):
    """List images."""
    from minictr.cli.format import ago, short_id, size, table

    rows = []
    for image in ctx.client.get("/images/json"):
        image_id = image["Id"] if no_trunc else short_id(image["Id"])
        for ref in image["RepoTags"] or ["<none>:<none>"]:
            repo, _, tag = ref.rpartition(":")
            rows.append([repo, tag, image_id, ago(image["Created"]), size(image["Size"])])
    if quiet:
        for image_id in dict.fromkeys(row[2] for row in rows):
            click.echo(image_id)
        return
    click.echo(table(["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"], rows))


@click.command()
@click.option("-f", "--force", is_flag=True, help="Remove the image even if containers use it.")
@click.argument("names", nargs=-1, required=True)
@pass_ctx
def rmi(ctx, force, names):
    """Remove one or more images."""

    def remove(name):
        for item in ctx.client.delete(api_path("/images/{}", name), {"force": int(force)}).json():
            for key, value in item.items():
                click.echo(f"{key}: {value}")

    if not each(names, remove):
        sys.exit(1)


@click.command("import")
@click.option("-c", "--change", multiple=True, help="Apply a Dockerfile instruction (CMD, ENV, WORKDIR, …).")
@click.option("-m", "--message", default="", help="Commit message for the imported image.")
@click.argument("file")
@click.argument("reference", required=False)
@pass_ctx
def import_(ctx, change, message, file, reference):
    """Make an image from a rootfs tarball (FILE, or - for stdin)."""
    query = {"fromSrc": "-", "changes": list(change), "message": message}
    if reference:
        repo, tag = _split_tag(reference)
        query.update(repo=repo, tag=tag)
    with _open_input(file) as stream:
        for line in ctx.client.stream("POST", "/images/create", query, stream).json_lines():
            _echo_progress(line)


@click.command()
@click.option("-i", "--input", "file", default="-", help="Read from a tar archive file instead of stdin.")
@click.option("-q", "--quiet", is_flag=True, help="Suppress the load output.")
@pass_ctx
def load(ctx, file, quiet):
    """Load images from a `docker save` archive or an OCI image layout tar."""
    with _open_input(file) as stream:
        for line in ctx.client.stream("POST", "/images/load", {"quiet": int(quiet)}, stream).json_lines():
            if not quiet or "error" in line:  # the daemon streams a load's error, as Docker's
                _echo_progress(line)


@click.command("inspect")
@click.argument("names", nargs=-1, required=True)
@pass_ctx
def inspect_image(ctx, names):
    """Low-level information on images, as JSON."""
    inspect_each(names, lambda name: ctx.client.get(api_path("/images/{}/json", name)))


def _split_tag(reference):
    name, _, tag = reference.rpartition(":")
    if not name or "/" in tag:
        return reference, "latest"
    return name, tag


def _open_input(file):
    if file == "-":
        return open(sys.stdin.fileno(), "rb", closefd=False)
    try:
        return open(file, "rb")
    except OSError as e:
        raise MinictrError(f"open {file}: {e.strerror}") from None


def _echo_progress(line):
    if "error" in line:
        raise MinictrError(line.get("errorDetail", {}).get("message") or line["error"])
    text = line.get("stream") or line.get("status") or ""
    click.echo(text.rstrip("\n"))


@click.group()
def image():
    """Manage images."""


image.add_command(images, "ls")
image.add_command(rmi, "rm")
image.add_command(import_, "import")
image.add_command(load, "load")
image.add_command(inspect_image, "inspect")


def _more_image_commands():
    from minictr.cli.commit import tag
    from minictr.cli.history import history, prune
    from minictr.cli.push import push
    from minictr.cli.save import save

    for command, name in ((history, "history"), (prune, "prune"), (push, "push"), (save, "save"), (tag, "tag")):
        image.add_command(command, name)


_more_image_commands()
