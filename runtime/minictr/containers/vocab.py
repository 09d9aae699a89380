"""Two words of Docker's vocabulary the container verbs share: timestamps and signal names.

(Kept together so that minictr.spec can take both in one move.)"""

import signal
import time

from minictr.errors import InvalidArgument


def rfc3339(ns=None):
    ns = time.time_ns() if ns is None else ns
    seconds, frac = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{frac:09d}Z"


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
