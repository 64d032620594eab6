"""DataLoader construction and I/O timing.

``make_loader`` wraps a :class:`~weathergnn.data.windows.WindowDataset` (or any
map-style dataset) in a ``torch.utils.data.DataLoader``: persistent workers when
``workers > 0``, page-locked memory only when CUDA is available, a seeded
shuffle order and seeded worker RNGs. ``timed`` records the time spent waiting
for each batch under the timer key ``"IO"``.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator
from typing import Any, Protocol

import numpy as np
import torch

__all__ = ["IO_KEY", "TimedLoader", "make_loader", "timed"]

IO_KEY = "IO"  # == weathergnn.timing.TimeType.IO


class _TimerLike(Protocol):
    def start(self, key: str) -> None: ...
    def end(self, key: str) -> None: ...


def _worker_init(worker_id: int) -> None:
    # torch seeds each worker as base_seed + worker_id; derive numpy/random from it.
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)
    try:  # workers already run in parallel: keep dask single-threaded inside each
        import dask

        dask.config.set(scheduler="synchronous")
    except ImportError:  # pragma: no cover
        pass


class TimedLoader:
    """Iterable over a loader that times each wait for the next batch (key ``"IO"``)."""

    def __init__(self, loader: Iterable, timer: _TimerLike | None) -> None:
        self.loader = loader
        self.timer = timer

    def __len__(self) -> int:
        return len(self.loader)  # type: ignore[arg-type]

    def __iter__(self) -> Iterator[Any]:
        it = iter(self.loader)
        while True:
            if self.timer is not None:
                self.timer.start(IO_KEY)
            try:
                batch = next(it)
            except StopIteration:
                if self.timer is not None:
                    cancel = getattr(self.timer, "cancel", None)
                    if cancel is not None:
                        cancel(IO_KEY)  # the final, empty wait is not a batch
                    else:
                        self.timer.end(IO_KEY)
                return
            if self.timer is not None:
                self.timer.end(IO_KEY)
            yield batch


def timed(loader: Iterable, timer: _TimerLike | None) -> TimedLoader:
    """Wrap ``loader`` so every wait for a batch is timed as ``timer.start("IO")`` /
    ``timer.end("IO")``. ``timer=None`` passes batches through untimed. If the timer
    has a ``cancel(key)`` method, the final wait that ends the iteration is cancelled
    rather than recorded."""
    return TimedLoader(loader, timer)


def make_loader(
    dataset: torch.utils.data.Dataset,
    batch_size: int,
    shuffle: bool = True,
    workers: int = 0,
    pin_memory: bool = True,
    prefetch_factor: int | None = 2,
    seed: int = 0,
    *,
    drop_last: bool = False,
    timer: _TimerLike | None = None,
) -> torch.utils.data.DataLoader | TimedLoader:
    """Build a DataLoader.

    Args:
        dataset: map-style dataset (samples are dicts of tensors; default collate
            stacks them into ``[B, ...]``).
        batch_size: samples per batch.
        shuffle: reshuffle every epoch, with a ``torch.Generator`` seeded by ``seed``
            (the order is reproducible across runs).
        workers: worker processes (0 = load in the main process). With workers,
            they are persistent and dask runs single-threaded inside each.
        pin_memory: requested page-locked memory; honoured only if CUDA is available.
        prefetch_factor: batches prefetched per worker (ignored when ``workers == 0``).
        seed: seed of the shuffle order and of the worker RNGs.
        drop_last: drop the last incomplete batch.
        timer: if given, the loader is returned wrapped with :func:`timed`.

    Returns:
        ``DataLoader`` (or :class:`TimedLoader` when ``timer`` is given).
    """
    g = torch.Generator()
    g.manual_seed(int(seed))
    kwargs: dict[str, Any] = {}
    if workers > 0:
        kwargs.update(persistent_workers=True, prefetch_factor=prefetch_factor, worker_init_fn=_worker_init)
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        num_workers=workers,
        pin_memory=bool(pin_memory and torch.cuda.is_available()),
        drop_last=drop_last,
        generator=g,
        **kwargs,
    )
    return timed(loader, timer) if timer is not None else loader
