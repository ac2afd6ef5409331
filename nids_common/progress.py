"""Progress bars for long steps: shown on a terminal, silent in logs and CI."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


@contextmanager
def progress(enabled: bool | None = None) -> Iterator[Progress]:
    """A rich Progress that renders only when stderr is a terminal (or `enabled` says so)."""
    show = sys.stderr.isatty() if enabled is None else enabled
    bar = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        disable=not show,
        transient=False,
    )
    with bar:
        yield bar
