"""What long work shows on a terminal: the step, the day, the task running, rows loaded and their rate.

On a terminal a rich spinner names the running task and each load prints one line with its rate; when
the output is not a terminal (CI, a pipe, a file) only the steps and each day's one-line summary are
printed. The full output of every run goes to a log file whose path is printed.
"""

from __future__ import annotations

import re
import sys
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime

from rich.console import Console

# `airflow dags test` announces every task it runs on a line of its own.
TASK_START = re.compile(r"^(\S+) .*\[DAG TEST\] starting task_id=(\S+)")
TASK_END = re.compile(r"^(\S+) .*\[DAG TEST\] end task task_id=(\S+)")
TASK_FAILED = re.compile(r"new_state=(failed|up_for_retry)")


def _timestamp(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


@dataclass
class DayProgress:
    """Reads one DAG run's output line by line and tells the console what it means."""

    console: Console
    label: str
    live: bool
    # callable(task_id) -> rows that load task loaded, None if it re-used an earlier run's load
    rows_of_load: object = None
    status: object = None
    started: dict[str, datetime] = field(default_factory=dict)
    rows_loaded: int = 0
    load_seconds: float = 0.0
    tasks_done: int = 0

    def feed(self, line: str) -> None:
        if match := TASK_START.match(line):
            self.started[match[2]] = _timestamp(match[1])
            if self.status is not None:
                self.status.update(f"{self.label}: {match[2]} ({self.tasks_done} task(s) done)")
        elif match := TASK_END.match(line):
            self.tasks_done += 1
            task_id = match[2]
            if task_id.startswith("load_") and self.rows_of_load is not None:
                rows = self.rows_of_load(task_id)
                start, end = self.started.get(task_id), _timestamp(match[1])
                seconds = (end - start).total_seconds() if start and end else 0.0
                if rows is None:
                    if self.live:
                        self.console.print(f"    {self.label} {task_id}: already loaded by an earlier run, re-used",
                                           highlight=False)
                else:
                    self.rows_loaded += rows
                    self.load_seconds += seconds
                    if self.live:
                        self.console.print(f"    {self.label} {task_id}: {rows:,} rows in {seconds:.1f} s"
                                           f" ({rate(rows, seconds)})", highlight=False)

    def summary(self) -> str:
        return f"{self.rows_loaded:,} rows loaded ({rate(self.rows_loaded, self.load_seconds)})"


def rate(rows: int, seconds: float) -> str:
    return f"{rows / seconds:,.0f} rows/s" if seconds > 0 else "no time measured"


class Progress:
    def __init__(self, console: Console | None = None):
        if console is None:
            console = Console(file=sys.stdout, highlight=False, soft_wrap=True)
            if not console.is_terminal:  # a log or a pipe: tables need not squeeze into 80 columns
                console = Console(file=sys.stdout, highlight=False, soft_wrap=True, width=120)
        self.console = console

    @property
    def live(self) -> bool:
        return self.console.is_terminal

    def step(self, text: str) -> None:
        self.console.print(f"==> {text}", highlight=False, markup=False)

    def line(self, text: str = "") -> None:
        self.console.print(text, highlight=False, markup=False)

    @contextmanager
    def day(self, label: str, rows_of_load=None):
        progress = DayProgress(self.console, label, self.live, rows_of_load)
        if not self.live:
            yield progress
            return
        with self.console.status(f"{label}: starting") as status:
            progress.status = status
            yield progress
