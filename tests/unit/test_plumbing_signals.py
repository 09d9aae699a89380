"""Joining a container's network namespace must never signal the daemon itself.

pyroute2's NetNS forked a child that inherited the asyncio loop's signal wakeup fd; the SIGTERM
it sent that child was read by the daemon's loop as its own, and the daemon stopped."""

import asyncio
import os
import signal

import pytest

from minictr.networks import plumbing

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="setns into another netns needs root")


def test_listing_a_namespace_many_times_never_reaches_the_loops_sigterm_handler():
    async def main():
        received = []
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, received.append, "SIGTERM")
        try:
            for _ in range(40):
                names = await asyncio.to_thread(plumbing.container_interfaces, os.getpid())
                assert "lo" in names
            await asyncio.sleep(0.2)  # a late wakeup byte would be read by now
        finally:
            loop.remove_signal_handler(signal.SIGTERM)
        return received

    assert asyncio.run(main()) == []
