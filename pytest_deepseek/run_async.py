"""`asyncio.run` for coroutines that return large results (a run's records)."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run_async(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run `coroutine` to its end on a new event loop and return its result.

    Python 3.11's `asyncio.run`, run from the main thread, formats the repr of its main task
    (result included) when it puts the SIGINT handler back; for a load's result that is the repr of
    every record: 1.4 s of CPU for 20,000 records of 200 token events, minutes and gigabytes for an
    hour-long run. The result is therefore handed over outside the task.
    """
    box: list[T] = []

    async def main() -> None:
        box.append(await coroutine)

    asyncio.run(main())
    return box[0]
