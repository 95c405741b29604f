"""Waiting for what real sockets, processes and engines do in their own time."""

import asyncio
from collections.abc import Callable


async def until(predicate: Callable[[], object], within: float = 10.0) -> None:
    """Wait until ``predicate`` holds; ``within`` only catches a hang.

    Polled: the conditions span Home Assistant, the link and the peer.
    """
    async with asyncio.timeout(within):
        while not predicate():  # noqa: ASYNC110
            await asyncio.sleep(0.01)
