"""Where minictr keeps its socket and its state for this process's user (spec/paths.py says where,
from the user id and the environment)."""

import os

from minictr.spec import paths as spec_paths


def default_socket() -> str:
    return spec_paths.default_socket(os.geteuid(), os.environ)


def default_data_root() -> str:
    return spec_paths.default_data_root(os.geteuid(), os.environ, os.path.expanduser("~"))
