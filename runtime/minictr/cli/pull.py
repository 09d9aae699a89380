"""pull: POST /images/create?fromImage=…&tag=… with the stored credentials, and the progress
rendered as `docker pull` does: per-layer lines redrawn in place on a terminal, one line per
step otherwise, only the reference with -q. run/create call `pull_image` for a missing image."""

import sys

import click

from minictr.cli.decorators import pass_ctx
from minictr.errors import MinictrError


@click.command()
@click.option("-q", "--quiet", is_flag=True, help="Suppress the progress output.")
@click.option("--platform", help="Pull the image for this platform (os/arch[/variant]).")
@click.option("-a", "--all-tags", is_flag=True, hidden=True)
@click.argument("name")
@pass_ctx
def pull(ctx, quiet, platform, all_tags, name):
    """Pull an image from a registry."""
    if all_tags:
        raise MinictrError("pull --all-tags is not supported")
    pull_image(ctx.client, name, platform=platform, quiet=quiet, out=sys.stdout)


def pull_image(client, name: str, platform: str | None = None, quiet: bool = False, out=None,
               announce: bool = True) -> str:
    """Pull `name`; progress to `out` (a terminal gets it redrawn in place). Returns the full reference.
    `announce`: say which default tag is used and print the reference at the end (pull does, run does not)."""
    from minictr.cli.login import registry_auth_header
    from minictr.spec import reference as references

    ref = references.parse(name, default_tag=False)
    if ref.tag is None and ref.digest is None:
        ref = references.parse(name)
        if not quiet and announce:
            print(f"Using default tag: {ref.tag}", file=out, flush=True)
    query = {"fromImage": ref.familiar_name, "tag": ref.digest or ref.tag}
    if platform:
        query["platform"] = platform
    response = client.stream("POST", "/images/create", query, headers=registry_auth_header(ref.domain))
    render = _TerminalProgress(out) if out is not None and out.isatty() and not quiet else _PlainProgress(out, quiet)
    for message in response.json_lines():
        if "error" in message:
            render.finish()
            raise MinictrError((message.get("errorDetail") or {}).get("message") or message["error"])
        render.show(message)
    render.finish()
    full = ref.full()
    if out is not None and announce:
        print(full, file=out, flush=True)
    return full


class _PlainProgress:
    """One line per step, without the byte counts (docker pull's output into a pipe)."""

    def __init__(self, out, quiet):
        self.out = None if quiet else out

    def show(self, message):
        if self.out is None or "progressDetail" in message and (message["progressDetail"] or {}).get("current"):
            return
        text = message.get("status") or message.get("stream") or ""
        if message.get("id"):
            text = f"{message['id']}: {text}"
        print(text, file=self.out, flush=True)

    def finish(self):
        pass


class _TerminalProgress:
    """A line per layer, redrawn in place as its status changes (as docker's jsonmessage does)."""

    def __init__(self, out):
        self.out = out
        self.lines = {}  # id → its line's index

    def show(self, message):
        text = message.get("status") or ""
        if message.get("progress"):
            text = f"{text} {message['progress']}"
        layer = message.get("id")
        if layer is None:
            self.out.write(f"{text}\n")
        elif layer not in self.lines:
            self.lines[layer] = len(self.lines)
            self.out.write(f"{layer}: {text}\x1b[K\n")
        else:
            up = len(self.lines) - self.lines[layer]
            self.out.write(f"\x1b[{up}A\r\x1b[2K{layer}: {text}\x1b[{up}B\r")
        if layer is None:
            self.lines = {}
        self.out.flush()

    def finish(self):
        self.out.flush()
