"""Background tasks that must run to their end, and streams that a worker thread writes.

asyncio keeps only weak references to tasks: a task that nobody holds — an attach bridge waiting
on its sockets, say — can be garbage-collected while it waits, and its stream ends in the middle.
`spawn` holds each task until it is done."""

import asyncio
import contextlib
import logging
import os

log = logging.getLogger("minictr.tasks")
STREAM_CHUNK = 1 << 16

_RUNNING = set()


def spawn(coro):
    task = asyncio.get_running_loop().create_task(coro)
    _RUNNING.add(task)
    task.add_done_callback(_RUNNING.discard)
    return task


async def thread_stream(produce):
    """The bytes that `produce(fileobj)` writes in a worker thread, as an async iterator.

    A pipe in between bounds the memory; when the consumer stops early (the client went
    away), closing the read end makes the producer's next write fail and the thread end."""
    loop = asyncio.get_running_loop()
    read_fd, write_fd = os.pipe2(os.O_CLOEXEC)
    out = os.fdopen(write_fd, "wb", buffering=STREAM_CHUNK)

    def run():
        try:
            produce(out)
        finally:
            with contextlib.suppress(OSError):
                out.close()

    worker = asyncio.ensure_future(asyncio.to_thread(run))
    reader = asyncio.StreamReader(limit=STREAM_CHUNK * 4)
    transport, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader),
                                                os.fdopen(read_fd, "rb", buffering=0))
    finished = False
    try:
        while chunk := await reader.read(STREAM_CHUNK):
            yield chunk
        finished = True
    finally:
        transport.close()
        try:
            await worker
        except BrokenPipeError:
            pass
        except Exception as e:
            if finished:
                # The headers are gone: cut the stream so that the client sees a broken tar.
                log.warning("archive stream failed: %s", e)
                raise ConnectionResetError(f"archive stream failed: {e}") from None
