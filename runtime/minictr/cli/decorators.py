"""click's side of the command context (cli/context.py stays click-free for the fast path)."""

import click

from minictr.cli.context import Context

pass_ctx = click.make_pass_decorator(Context)
