"""save: images to a tar archive (docker save's format, which OCI tools read too)."""

import os
import sys
import tempfile

import click

from minictr.cli.decorators import pass_ctx
from minictr.errors import MinictrError


@click.command()
@click.option("-o", "--output", help="Write to a file, instead of STDOUT.")
@click.argument("names", nargs=-1, required=True)
@pass_ctx
def save(ctx, output, names):
    """Save one or more images to a tar archive (streamed to STDOUT by default)."""
    if not output and sys.stdout.isatty():
        raise MinictrError("cowardly refusing to save to a terminal. Use the -o flag or redirect")
    response = ctx.client.stream("GET", "/images/get", {"names": list(names)})
    if not output:
        out = sys.stdout.buffer
        for chunk in response.chunks():
            out.write(chunk)
        out.flush()
        return
    # As the docker CLI: a temporary file beside the output, renamed when complete, so that
    # a failed save leaves no half archive under the name asked for.
    directory = os.path.dirname(os.path.abspath(output))
    try:
        fd, temporary = tempfile.mkstemp(dir=directory, prefix=".minictr-save-")
    except OSError as e:
        raise MinictrError(f"failed to save image: unable to create file {output}: {e.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as out:
            for chunk in response.chunks():
                out.write(chunk)
        os.chmod(temporary, 0o666 & ~_umask())
        os.rename(temporary, output)
    except BaseException:
        os.unlink(temporary)
        raise


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask
