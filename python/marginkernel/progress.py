"""Progress reporting: one callback signature for the Python API, progress bars for the terminal.

A *progress callback* is any callable ``callback(stage, done, total)``:

``stage``  what is being worked on: one of :data:`STAGES` (``"revalue"``, ``"margin"``,
           ``"partitions"``; code may add stages, a callback must accept any string);
``done``   units of work finished so far in that stage (0 when the stage starts);
``total``  units of work of the stage (accounts with positions for ``"margin"``, partitions for
           ``"partitions"``, 1 for a stage that reports only its start and end).

Calls for one stage come in order, ``done`` never decreases and the last call has
``done == total``. A callback runs on the caller's thread (with Dask: on the client, as partitions
finish), must be cheap, and must not raise: an exception from it propagates and stops the work.

:class:`TerminalProgress` is the callback the command line uses: a tqdm bar per stage on stderr,
shown only for a stage that lasts more than ``delay`` seconds (one second by default) and only
when stderr is a terminal; otherwise it draws nothing.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import IO, Any

#: a progress callback: ``callback(stage, done, total)``
ProgressCallback = Callable[[str, int, int], None]

#: the stages marginkernel reports
STAGES = ("revalue", "margin", "partitions")

_LABELS = {"revalue": "revaluing instruments", "margin": "margining accounts", "partitions": "Dask partitions"}
_UNITS = {"margin": "acc", "partitions": "part"}


def notify(callback: ProgressCallback | None, stage: str, done: int, total: int) -> None:
    """Calls ``callback(stage, done, total)`` when a callback is given."""
    if callback is not None:
        callback(stage, int(done), int(total))


class Recorder:
    """A callback that keeps every call as ``(stage, done, total)`` (for tests and logs)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int, int]] = []

    def __call__(self, stage: str, done: int, total: int) -> None:
        self.calls.append((stage, done, total))


class TerminalProgress:
    """Progress bars (tqdm) on a terminal; silent when disabled or when the stream is not a terminal.

    Use as a context manager (closes the bars) and pass the object itself as the callback::

        with TerminalProgress(quiet=args.quiet) as progress:
            result = distributed.margin(engine, positions, progress=progress)
    """

    def __init__(self, *, quiet: bool = False, stream: IO[str] | None = None, delay: float = 1.0) -> None:
        self.stream = sys.stderr if stream is None else stream
        self.enabled = not quiet and _is_terminal(self.stream)
        self.delay = delay
        self._bars: dict[str, Any] = {}

    def __call__(self, stage: str, done: int, total: int) -> None:
        if not self.enabled:
            return
        bar = self._bars.get(stage)
        if bar is None:
            from tqdm import tqdm  # type: ignore[import-untyped]

            bar = tqdm(
                total=total,
                desc=_LABELS.get(stage, stage),
                unit=_UNITS.get(stage, "it"),
                file=self.stream,
                delay=self.delay,
                leave=False,
                dynamic_ncols=True,
            )
            self._bars[stage] = bar
        bar.total = total
        bar.update(done - bar.n)
        if done >= total:
            bar.close()
            del self._bars[stage]

    def close(self) -> None:
        for bar in self._bars.values():
            bar.close()
        self._bars.clear()

    def __enter__(self) -> TerminalProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _is_terminal(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


__all__ = ["STAGES", "ProgressCallback", "Recorder", "TerminalProgress", "notify"]
