"""Reading an overlay upper directory as a layer's content: what both `commit` (the layer
tar) and a container's `diff`/`cp` (containers/files.py) need."""

import os


class ExactSize:
    """A file's bytes cut or zero-padded to the size its tar header announced (it may change
    while we read it)."""

    def __init__(self, f, size):
        self._f = f
        self._left = size

    def read(self, size=-1):
        if self._left <= 0:
            return b""
        size = self._left if size is None or size < 0 else min(size, self._left)
        data = self._f.read(size) or b"\0" * size
        self._left -= len(data)
        return data


def is_opaque_dir(fd):
    """Whether an overlay upper directory (an fd) is opaque: it hides the lower layers' entries."""
    for name in ("trusted.overlay.opaque", "user.overlay.opaque"):
        try:
            if os.getxattr(fd, name) == b"y":
                return True
        except OSError:
            pass
    return False
