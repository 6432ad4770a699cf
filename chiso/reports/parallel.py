"""Rendering and sending messages in worker processes; the one parent process keeps the ledger.

A national night is ~3,356 nightly e-mails; rendering one (its view of the marts, two charts, the HTML
and the MIME message) is CPU work, sending it is an SMTP exchange of four round trips, during which one
sender would sit idle. :class:`SendAhead` forks worker processes once the night's report is in memory
(they share it copy-on-write: nothing is pickled but recipients and results), hands them the recipients
in small batches in the ledger's order, and gives each recipient's result back in that same order. Each
worker renders a message and sends it through its own SMTP connection (the mailer is forked unopened:
each copy connects on its first message, and says QUIT when the worker ends). Only a bounded number of
batches is ever in flight.

Workers never touch the ledger: the parent records a recipient in ``ops.report_deliveries`` only once its
worker reported that the SMTP server accepted the message (chiso.reports.delivery). A message that
could not be rendered or sent is that recipient's failure, raised when the parent asks for it.
"""

from __future__ import annotations

import multiprocessing
import os
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor

from chiso.reports.recipients import Recipient

# work(recipient, message_id): render and send one message in a worker, or raise.
WorkFunction = Callable[[Recipient, str], None]

BATCH = 8            # recipients per task: one round trip per batch, small enough to keep both cores busy
BATCHES_AHEAD = 4    # per worker: enough to keep it busy, few enough that a failure stops the night soon
_work: WorkFunction | None = None       # the forked workers' copy of the work function
_at_exit: Callable[[], None] | None = None
_finaliser = None


class WorkerFailed(RuntimeError):
    """A worker could not render or send one recipient's message (the original exception's type and text)."""


def default_workers() -> int:
    """One worker per core: the parent only waits for results and writes the ledger."""
    return max(1, min(os.cpu_count() or 1, 8))


def _work_batch(batch: list[tuple[Recipient, str]]) -> list[str | None]:
    """In a worker: each recipient's error, or None once the SMTP server accepted its message."""
    global _finaliser
    if _finaliser is None and _at_exit is not None:
        from multiprocessing.util import Finalize

        _finaliser = Finalize(None, _at_exit, exitpriority=10)   # run as the worker ends: the SMTP QUIT
    results = []
    for recipient, message_id in batch:
        try:
            _work(recipient, message_id)
            results.append(None)
        except Exception as exc:  # noqa: BLE001 - one recipient's failure, reported to the parent
            results.append(f"{type(exc).__name__}: {exc}")
    return results


class SendAhead:
    """``with SendAhead(work, workers, at_exit) as ahead:`` then ``ahead.start(pending)`` once and
    ``ahead.take(recipient, message_id)`` for each of ``pending``, in order: it returns once that
    recipient's message was accepted, or raises WorkerFailed.

    The workers are forked on entering, before the caller opens its database connection and before
    anything is sent, so that no worker holds a copy of an open connection; ``at_exit`` runs in each
    worker as it ends (closing its SMTP connection)."""

    def __init__(self, work: WorkFunction, workers: int | None = None, at_exit: Callable[[], None] | None = None,
                 batch: int = BATCH, batches_ahead: int = BATCHES_AHEAD):
        self.work, self.at_exit, self.workers, self.batch = work, at_exit, workers or default_workers(), batch
        self.limit = self.workers * batches_ahead
        self._executor: ProcessPoolExecutor | None = None
        self._batches: deque[list[tuple[Recipient, str]]] = deque()
        self._running: deque[Future] = deque()
        self._ready: deque[tuple[Recipient, str, str | None]] = deque()

    def __enter__(self) -> SendAhead:
        global _work, _at_exit
        _work, _at_exit = self.work, self.at_exit   # inherited by the forked workers
        self._executor = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("fork"))
        # Fork now (an executor forks on its first task), not later while the ledger's connection is open.
        for done in [self._executor.submit(os.getpid) for _ in range(self.workers)]:
            done.result()
        return self

    def __exit__(self, *exc) -> None:
        global _work, _at_exit
        self._batches.clear()
        for future in self._running:
            future.cancel()
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None
        _work, _at_exit = None, None

    def start(self, pending: list[tuple[Recipient, str]]) -> None:
        """The recipients, with their Message-IDs, in the order they will be taken."""
        for index in range(0, len(pending), self.batch):
            self._batches.append(pending[index:index + self.batch])
        self._top_up()

    def _top_up(self) -> None:
        while self._batches and len(self._running) < self.limit:
            batch = self._batches.popleft()
            future = self._executor.submit(_work_batch, batch)
            future.batch = batch
            self._running.append(future)

    def take(self, recipient: Recipient, message_id: str) -> None:
        """Returns once the recipient's message was accepted; raises WorkerFailed if it was not (or its
        worker died: then nobody knows, and the recipient is not recorded)."""
        if not self._ready:
            if not self._running:
                raise RuntimeError("take() without a matching start()")
            future = self._running.popleft()
            try:
                errors = future.result()
            except Exception as exc:  # noqa: BLE001 - a dead worker fails its batch's recipients
                errors = [f"{type(exc).__name__}: {exc}"] * len(future.batch)
            self._ready.extend((r, m, error) for (r, m), error in zip(future.batch, errors))
            self._top_up()
        expected_recipient, expected_id, error = self._ready.popleft()
        if (expected_recipient.email, expected_id) != (recipient.email, message_id):
            raise RuntimeError(f"out of order: worked on {expected_recipient.email}, asked for {recipient.email}")
        if error is not None:
            raise WorkerFailed(error)
