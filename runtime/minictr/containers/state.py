"""A container's lifecycle: the states and the transitions allowed between them, in one place."""

import enum

from minictr.errors import Conflict


class State(str, enum.Enum):
    CREATED = "created"
    RUNNING = "running"
    PAUSED = "paused"
    RESTARTING = "restarting"  # exited; its restart policy brings it back after a back-off
    EXITED = "exited"
    REMOVING = "removing"

    @property
    def alive(self):
        """Its process runs (perhaps frozen): it can be signalled, exec'd into, stopped."""
        return self in (State.RUNNING, State.PAUSED)


_ALLOWED = {
    State.CREATED: {State.RUNNING, State.EXITED, State.REMOVING},
    State.RUNNING: {State.EXITED, State.PAUSED, State.RESTARTING},
    State.PAUSED: {State.RUNNING, State.EXITED, State.RESTARTING},
    State.RESTARTING: {State.RUNNING, State.EXITED, State.REMOVING},
    State.EXITED: {State.RUNNING, State.REMOVING, State.RESTARTING},
    State.REMOVING: set(),
}


def check_transition(name, current, target):
    """Raise Conflict, in Docker's words where it has some, when `current` → `target` is not allowed."""
    if target in _ALLOWED[current]:
        return
    if current is State.REMOVING:
        raise Conflict(f"removal of container {name} is already in progress")
    if current is State.RUNNING and target is State.REMOVING:
        raise Conflict(f"cannot remove container {name}: container is running: stop the container before removing or force remove")
    if current is State.PAUSED:
        raise Conflict(f"cannot {'remove' if target is State.REMOVING else 'start'} container {name}: "
                       "container is paused: unpause the container before stopping or killing it")
    if current is State.RUNNING and target is State.RUNNING:
        raise Conflict(f"container {name} is already running")
    raise Conflict(f"container {name} cannot go from {current.value} to {target.value}")
