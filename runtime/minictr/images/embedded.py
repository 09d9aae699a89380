"""busybox-local, the embedded default image: a rootfs archive that scripts/install builds once
from the host's static busybox (images/busybox/build) into a shared read-only place. Every daemon,
root's and each user's, imports it into its own store the first time a container or a pull asks
for it, so nobody imports it by hand and no registry is ever asked for it."""

import threading

from minictr.errors import InvalidArgument, MinictrError, NotFound
from minictr.spec import reference as references

REFERENCE = "docker.io/library/busybox-local:latest"
CHANGES = ['CMD ["sh"]']


class EmbeddedImage:
    def __init__(self, store, archive: str):
        self.store = store
        self.archive = archive
        self._lock = threading.Lock()  # two first `run`s at once import it once

    def names(self, name) -> bool:
        """Whether `name` (as a user types it: `busybox-local`, `busybox-local:latest`) is the embedded image."""
        try:
            return references.parse(name).full() == REFERENCE
        except InvalidArgument:
            return False  # not a reference at all: the caller says what is wrong with it

    def provide(self, name) -> bool:
        """Import the embedded image when `name` is it and the store lacks it. Returns whether it was
        imported now; any other name is left alone (False)."""
        if not isinstance(name, str) or not self.names(name):
            return False
        with self._lock:
            try:
                self.store.resolve(REFERENCE)
                return False
            except NotFound:
                pass
            try:
                archive = open(self.archive, "rb")
            except FileNotFoundError:
                raise NotFound(f"busybox-local: the embedded default image's archive {self.archive} is missing: "
                               f"scripts/install builds it") from None
            except OSError as e:
                raise MinictrError(f"busybox-local: cannot read the embedded default image's archive "
                                   f"{self.archive}: {e.strerror}") from None
            with archive:
                self.store.import_tar(archive, REFERENCE, CHANGES, f"embedded default image from {self.archive}")
            return True
