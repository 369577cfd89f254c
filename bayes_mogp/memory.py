"""This machine's memory: its physical size, and the peak resident memory of this process over a block.

One place for what the size checks (the CLI's job estimates, the iterative GP's choice of storage) and the
benchmarks measure.  Linux reads ``/proc/self/statm``; elsewhere the peak falls back to ``getrusage``.
"""

from __future__ import annotations

import os
import threading

__all__ = ["physical_memory", "require_memory", "PeakRSS"]


def physical_memory() -> int | None:
    """Bytes of physical memory, or ``None`` where the platform does not say."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return None


class PeakRSS:
    """Peak resident memory (bytes) of this process while the context is open, sampled every 20 ms.

    ``before``: the resident memory on entry; ``peak``: the largest sample, the entry and exit included.
    """

    def __init__(self, interval: float = 0.02):
        self.before = self.peak = 0
        self._interval = interval
        self._stop = threading.Event()
        self._page = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096

    def rss(self) -> int:
        """Resident memory of this process now (bytes)."""
        try:
            with open("/proc/self/statm") as f:
                return int(f.read().split()[1]) * self._page
        except OSError:
            import resource

            return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self.rss())
            self._stop.wait(self._interval)

    def __enter__(self):
        self.before = self.peak = self.rss()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.rss())


def require_memory(need_bytes: float, what: str, remedy: str, *, fraction: float = 0.5) -> None:
    """Refuse (:class:`~bayes_mogp.errors.InputError`) work whose ``what`` needs more than ``fraction`` of this
    machine's physical memory, with both sizes and the ``remedy`` in the message (unknown memory: no refusal)."""
    from .errors import InputError

    have = physical_memory()
    if have and need_bytes > fraction * have:
        raise InputError(f"{what} need about {need_bytes / 2**30:.1f} GiB, over {fraction:.0%} of this machine's "
                         f"{have / 2**30:.1f} GiB; {remedy}")
