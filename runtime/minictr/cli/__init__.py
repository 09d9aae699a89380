"""minictr: the command line. Every command talks to the daemon through the Docker Engine API.

Commands import only what they need when they run: the CLI's start-up time is
part of every `minictr run`. The hot container commands (run, create, start,
stop, restart, kill, rm, exec, ps, wait) are parsed without importing click when their
arguments are plain (cli/fast.py, from a spec generated from the click
commands); anything else goes through click (cli/commands.py).
"""

import os
import sys

from minictr.errors import MinictrError


def main(host_commands=None):
    """Run the command line in sys.argv. HOST_COMMANDS, when given, returns click commands that work
    on this host rather than through a daemon (minictr/main.py's `daemon` and `doctor`)."""
    try:
        from minictr.cli import fast

        if not fast.dispatch(sys.argv[1:]):
            from minictr.cli.commands import run_click

            run_click(commands=host_commands() if host_commands else ())
    except MinictrError as e:
        from minictr.cli.context import error_line

        print(error_line(e), file=sys.stderr)
        # Docker's CLI exits 1 for a failed command; run and create set 125 on theirs (cli/actions.py).
        sys.exit(getattr(e, "exit_code", 1))
    except BrokenPipeError:
        # The reader of our output went away (`minictr ps | head`): not an error of ours.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
    sys.exit(0)
