"""Background tasks that must run to their end.

asyncio keeps only weak references to tasks: a task that nobody holds — an attach bridge waiting
on its sockets, say — can be garbage-collected while it waits, and its stream ends in the middle.
`spawn` holds each task until it is done."""

import asyncio

_RUNNING = set()


def spawn(coro):
    task = asyncio.get_running_loop().create_task(coro)
    _RUNNING.add(task)
    task.add_done_callback(_RUNNING.discard)
    return task
