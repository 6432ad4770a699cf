"""Rendering messages in worker processes, ahead of the one process that sends them and keeps the ledger.

A national night is ~3,356 nightly e-mails; rendering one (its view of the marts, two charts, the HTML
and the MIME message) is CPU work, sending it is a short SMTP exchange. :class:`RenderAhead` forks worker
processes once the night's report is in memory (they share it copy-on-write, nothing is pickled but the
recipients and the finished messages), hands them the recipients in small batches in the ledger's
order, and gives the messages back in that same order. Only a bounded number of batches is ever in
flight, so memory does not grow with the number of recipients.

Workers never send nor touch the ledger: the parent sends each message, and records it in
``ops.report_deliveries`` once the SMTP server accepted it (chiso.reports.delivery). A message that
could not be rendered is that recipient's failure, raised when the parent asks for it, like a failed send.
"""

from __future__ import annotations

import multiprocessing
import os
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor

from chiso.reports.recipients import Recipient

# render(recipient, message_id) -> the finished message (anything picklable: chiso.reports.mail.OutgoingMessage)
RenderFunction = Callable[[Recipient, str], object]

BATCH = 8            # recipients per task: one round trip per batch, small enough to keep both cores busy
BATCHES_AHEAD = 4    # per worker; ~100 KB a message: at most a few MB of rendered mail waiting in memory
_render: RenderFunction | None = None   # the forked workers' copy of the render function


class RenderFailed(RuntimeError):
    """A worker could not render one recipient's message (the original exception's type and text)."""


def default_workers() -> int:
    """One worker per core: the parent mostly waits on the SMTP server and the workers on the CPU."""
    return max(1, min(os.cpu_count() or 1, 8))


def _render_batch(batch: list[tuple[Recipient, str]]) -> list[tuple[object | None, str | None]]:
    results = []
    for recipient, message_id in batch:
        try:
            results.append((_render(recipient, message_id), None))
        except Exception as exc:  # noqa: BLE001 - one recipient's failure, reported to the parent
            results.append((None, f"{type(exc).__name__}: {exc}"))
    return results


class RenderAhead:
    """``with RenderAhead(render, workers) as ahead:`` then ``ahead.start(pending)`` once and
    ``ahead.take(recipient, message_id)`` for each of ``pending``, in order.

    The workers are forked on entering, before the caller opens its database and SMTP connections, so
    that no worker holds a copy of them."""

    def __init__(self, render: RenderFunction, workers: int | None = None, batch: int = BATCH,
                 batches_ahead: int = BATCHES_AHEAD):
        self.render, self.workers, self.batch = render, workers or default_workers(), batch
        self.limit = self.workers * batches_ahead
        self._executor: ProcessPoolExecutor | None = None
        self._batches: deque[list[tuple[Recipient, str]]] = deque()
        self._running: deque[Future] = deque()
        self._ready: deque[tuple[Recipient, str, object | None, str | None]] = deque()

    def __enter__(self) -> RenderAhead:
        global _render
        _render = self.render  # inherited by the forked workers
        self._executor = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("fork"))
        # Fork now (an executor forks on its first task), not later while the ledger's connection is open.
        for done in [self._executor.submit(os.getpid) for _ in range(self.workers)]:
            done.result()
        return self

    def __exit__(self, *exc) -> None:
        global _render
        self._batches.clear()
        for future in self._running:
            future.cancel()
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None
        _render = None

    def start(self, pending: list[tuple[Recipient, str]]) -> None:
        """The recipients to render, with their Message-IDs, in the order they will be taken."""
        for index in range(0, len(pending), self.batch):
            self._batches.append(pending[index:index + self.batch])
        self._top_up()

    def _top_up(self) -> None:
        while self._batches and len(self._running) < self.limit:
            batch = self._batches.popleft()
            future = self._executor.submit(_render_batch, batch)
            future.batch = batch
            self._running.append(future)

    def take(self, recipient: Recipient, message_id: str) -> object:
        """The next message; raises RenderFailed if it could not be rendered (or the worker died)."""
        if not self._ready:
            if not self._running:
                raise RuntimeError("take() without a matching start()")
            future = self._running.popleft()
            try:
                results = future.result()
            except Exception as exc:  # noqa: BLE001 - a dead worker fails its batch's recipients
                results = [(None, f"{type(exc).__name__}: {exc}")] * len(future.batch)
            self._ready.extend((r, m, message, error) for (r, m), (message, error) in zip(future.batch, results))
            self._top_up()
        expected_recipient, expected_id, message, error = self._ready.popleft()
        if (expected_recipient.email, expected_id) != (recipient.email, message_id):
            raise RuntimeError(f"out of order: rendered {expected_recipient.email}, asked for {recipient.email}")
        if error is not None:
            raise RenderFailed(error)
        return message
