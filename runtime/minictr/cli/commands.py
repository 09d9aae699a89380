"""The click side of the CLI: the command group (subcommands imported lazily), `--help`,
and click's own errors. cli/__init__.py's main() comes here for everything the fast path
(cli/fast.py) does not take."""

import sys

import click

from minictr.cli.context import Context


class LazyGroup(click.Group):
    """Subcommands live in modules imported only when one of theirs is called."""

    def __init__(self, *args, lazy=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.lazy = lazy or {}

    def list_commands(self, ctx):
        return sorted(set(super().list_commands(ctx)) | set(self.lazy))

    def get_command(self, ctx, name):
        if name in self.lazy:
            module_name, attr = self.lazy[name]
            module = __import__(f"minictr.cli.{module_name}", fromlist=[attr])
            return getattr(module, attr)
        return super().get_command(ctx, name)


_COMMANDS = {
    "run": ("containers", "run"), "create": ("containers", "create"), "start": ("containers", "start"),
    "ps": ("containers", "ps"), "rm": ("containers", "rm"), "inspect": ("containers", "inspect"),
    "wait": ("containers", "wait"), "kill": ("containers", "kill"), "container": ("containers", "container"),
    "images": ("images", "images"), "rmi": ("images", "rmi"), "import": ("images", "import_"),
    "load": ("images", "load"), "image": ("images", "image"),
    "stop": ("containers", "stop"), "restart": ("containers", "restart"), "pause": ("containers", "pause"),
    "unpause": ("containers", "unpause"), "rename": ("containers", "rename"),
    "attach": ("attach", "attach"), "exec": ("exec", "exec_"), "logs": ("logs", "logs"),
    "events": ("events", "events"), "cp": ("files", "cp"), "diff": ("files", "diff"),
    "export": ("files", "export"), "top": ("files", "top"), "port": ("files", "port"),
    "version": ("system", "version"), "info": ("system", "info"),
    "system": ("system", "system"), "volume": ("volumes", "volume"), "network": ("networks", "network"),
    "stats": ("stats", "stats"), "update": ("update", "update"),
    "commit": ("commit", "commit"), "tag": ("commit", "tag"), "save": ("save", "save"),
    "history": ("history", "history"), "push": ("push", "push"),
    "pull": ("pull", "pull"), "login": ("login", "login"), "logout": ("login", "logout"),
}


@click.group(cls=LazyGroup, lazy=_COMMANDS, context_settings={"help_option_names": ["--help"]})
@click.option("-H", "--host", envvar="MINICTR_HOST", help="Daemon socket to connect to (unix://PATH).")
@click.version_option(package_name=None, version=__import__("minictr").__version__, prog_name="minictr")
@click.pass_context
def cli(click_ctx, host):
    """A small, fast, rootless container engine with Docker's commands."""
    click_ctx.obj = Context(host)


def run_click(args=None, commands=()):
    """Parse and run with click, COMMANDS added to the group; click's usage errors exit 125, as Docker's do."""
    for command in commands:
        cli.add_command(command)
    try:
        cli.main(args=args, prog_name="minictr", standalone_mode=False)
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)
    except click.ClickException as e:
        e.show()
        sys.exit(125 if e.exit_code == 2 else e.exit_code)
    except click.exceptions.Abort:
        sys.exit(130)
