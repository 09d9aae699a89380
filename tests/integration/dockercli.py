"""The docker CLI on the PATH, which the tests use as a client nobody here wrote.

Debian 12's `docker.io` (what scripts/install installs) is the CLI 20.10; these machines also have
a newer one. Where the two print different things for the same answer of the daemon, a test asks
`client_version()` and asserts what that CLI does: never a skip."""

import functools
import os
import re
import shutil
import subprocess

# The PATH the tests give the docker CLI: the suite's own, so that a run with /usr/bin first tests
# Debian's 20.10 (a PATH written into a test would pick one CLI for every run).
PATH = os.environ.get("PATH") or "/usr/local/bin:/usr/bin:/bin"


@functools.cache
def client_version():
    """The version of the docker CLI on the PATH as a tuple, (20, 10, 24) for "20.10.24+dfsg1"."""
    docker = shutil.which("docker", path=PATH)
    assert docker is not None, "no docker CLI on the PATH: scripts/install installs Debian's docker.io"
    # `docker --version` answers without a daemon: "Docker version 20.10.24+dfsg1, build 297e128".
    line = subprocess.run([docker, "--version"], capture_output=True, text=True, check=True).stdout
    match = re.match(r"Docker version (\d+)\.(\d+)\.(\d+)", line)
    assert match, f"unexpected `docker --version`: {line!r}"
    return tuple(int(part) for part in match.groups())


def older_than(*version):
    """Whether the docker CLI on the PATH is older than `version` (`older_than(23)`)."""
    return client_version() < version


# What the CLI 20.10 prints differently from later ones (28 here) for the same answer of the daemon.
# 23.0 is the release after 20.10: the split is there.

def run_error(message):
    """The first line `docker run`/`create` prints for an error the daemon answered (20.10 adds a period)."""
    return f"docker: Error response from daemon: {message}{'.' if older_than(23) else ''}"


def not_found(kind, name, message):
    """The line for a 404 of `inspect`/`rm` of a volume, image or network: 20.10 words it itself
    (`Error: No such volume: NAME`), later CLIs print the daemon's `message`."""
    return f"Error: No such {kind}: {name}" if older_than(23) else f"Error response from daemon: {message}"
