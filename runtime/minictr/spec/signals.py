"""Signals by the names Docker takes (`--signal`, `kill -s`, StopSignal, the API's `signal`)."""

import signal

from minictr.errors import InvalidArgument


def parse_signal(name):
    """A signal by number, `KILL` or `SIGKILL`; InvalidArgument otherwise."""
    name = str(name)
    if name.isdigit():
        return int(name)
    upper = name.upper()
    try:
        return signal.Signals[upper if upper.startswith("SIG") else "SIG" + upper]
    except KeyError:
        raise InvalidArgument(f"Invalid signal: {name}") from None
