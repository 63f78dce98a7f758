"""The run's progress bar (images/s, ETA) and how a run stops: Ctrl-C or `kill` end it cleanly,
saying how much of it is saved (every batch is its own transaction, so nothing committed is lost).
"""
from __future__ import annotations

import logging
import signal
from collections.abc import Iterator
from contextlib import contextmanager

from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

log = logging.getLogger("extraction.run")  # the run's own messages, under the name they always had


class ReportedInterrupt(KeyboardInterrupt):
    """Ctrl-C or SIGTERM after the run logged how much of it is saved."""


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """`kill` stops a run as cleanly as Ctrl-C does."""
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class Progress:
    """Images saved in this run, shown on a tqdm bar (which counts nothing when disabled)."""

    def __init__(self, bar: tqdm):
        self.bar, self.done = bar, 0

    def update(self, n: int) -> None:
        self.done += n
        self.bar.update(n)


@contextmanager
def progress(total: int, desc: str, enabled: bool = True) -> Iterator[Progress]:
    """A bar with images/s and ETA; Ctrl-C or SIGTERM inside it logs how far the run got."""
    bar = tqdm(total=total, desc=desc, unit="img", disable=not enabled, smoothing=0.1)
    counter = Progress(bar)
    try:
        with sigterm_as_interrupt(), logging_redirect_tqdm():
            yield counter
    except KeyboardInterrupt:
        bar.close()
        log.warning("interrupted: %d of %d images extracted and saved in this run; "
                    "run the same command again to continue where it stopped", counter.done, total)
        raise ReportedInterrupt() from None
    finally:
        bar.close()
