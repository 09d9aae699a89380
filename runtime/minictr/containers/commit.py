"""`docker commit`, the container side: hold the container still, find its upper dir, and
hand it to the image side (images/commit.py) that makes the layer and the image."""

import asyncio
import os

from minictr.containers.state import State
from minictr.errors import Conflict, NotFound
from minictr.images.commit import stage_commit


async def commit(store, control, images, ref, *, reference, changes, overrides, message, author, pause):
    """POST /commit: the container's changes as a new image; returns its id.

    A running container is paused meanwhile when asked (Docker's default) and when it can
    be (a freezer cgroup); its lock is held while its upper dir is read, so that it is not
    removed underneath."""
    container = store.get(ref)
    paused_here = False
    if pause and container.state is State.RUNNING:
        try:
            await control.pause(container.id)
            paused_here = True
        except Conflict:
            pass  # no freezer here (rootless without delegated cgroups): read the live dir
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
            await control.unpause(container.id)
    try:
        return await asyncio.to_thread(staged.store, images)
    finally:
        staged.close()
