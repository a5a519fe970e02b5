"""One way to spread independent jobs over processes (corpus synthesis, mel features, triplet sets)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any


def pool_map(fn: Callable[[Any], Any], jobs: Iterable[Any], workers: int, chunksize: int = 16,
             ) -> Iterator[Any]:
    """``map(fn, jobs)`` lazily and in order; in ``workers`` processes when there is more than one (``fn`` and the
    jobs must pickle). Consume the iterator fully: the pool lives while it runs."""
    if workers <= 1:
        yield from map(fn, jobs)
        return
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(workers) as pool:
        yield from pool.map(fn, jobs, chunksize=chunksize)
