"""`docker commit`, the container side: hold the container still, find its upper dir, and
hand it to the image side (images/commit.py) that makes the layer and the image."""

import asyncio
import contextlib
import logging
import os

from minictr.containers.state import State
from minictr.errors import Conflict, MinictrError, NotFound
from minictr.images.commit import stage_commit

log = logging.getLogger("minictr.containers")

# In the container's runtime directory while a commit holds it paused: a daemon killed meanwhile
# leaves it frozen, and the next one thaws it (thaw_after_killed_commit).
_FROZEN_BY_COMMIT = "frozen-by-commit"


async def commit(store, control, images, ref, *, reference, changes, overrides, message, author, pause):
    """POST /commit: the container's changes as a new image; returns its id.

    A running container is paused meanwhile when asked (Docker's default) and when it can
    be (a freezer cgroup); its lock is held while its upper dir is read, so that it is not
    removed underneath."""
    container = store.get(ref)
    marker = os.path.join(store.paths(container)["run"], _FROZEN_BY_COMMIT)
    paused_here = False
    if pause and container.state is State.RUNNING:
        # Written before the freeze: whatever point a kill -9 of the daemon comes at, the next
        # daemon knows whom to thaw.
        _write_marker(marker)
        try:
            await control.pause(container.id)
            paused_here = True
        except Conflict:
            # It exited meanwhile, or no freezer here (rootless without delegated cgroups): the dir as it is.
            _remove_marker(marker)
    try:
        async with container.lock:
            if container.removed or container.state is State.REMOVING:
                raise NotFound(f"No such container: {ref}")
            image = await asyncio.to_thread(images.resolve, container.image_id)
            upper = os.path.join(store.paths(container)["top"], "diff")
            staged = await asyncio.to_thread(
                stage_commit, images, upper, image, container.config, container.id, changes=changes,
                overrides=overrides, message=message, author=author, reference=reference)
    finally:
        if paused_here:
            # Not paused any more when it exited meanwhile: Docker commits a stopped one as it is.
            with contextlib.suppress(Conflict):
                await control.unpause(container.id)
            _remove_marker(marker)
    try:
        return await asyncio.to_thread(staged.store, images)
    finally:
        staged.close()


def thaw_after_killed_commit(store, groups, container):
    """At the daemon's start: a commit that a kill -9 of the daemon interrupted left the container
    frozen (and recorded as paused, or not yet); it runs again."""
    marker = os.path.join(store.paths(container)["run"], _FROZEN_BY_COMMIT)
    if not os.path.exists(marker):
        return
    if container.state.alive:
        try:
            groups.set_freezer(container, False)
        except MinictrError as e:
            log.warning("thawing %s, which a commit had paused: %s", container.name, e)
            return
        if container.state is State.PAUSED:
            store.set_state(container, State.RUNNING)
    _remove_marker(marker)


def _write_marker(path):
    with contextlib.suppress(FileNotFoundError):  # a container never started has no runtime dir
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600))


def _remove_marker(path):
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
