"""The micro-batcher: one thread per loaded version stacks the images that arrived within
``max_wait`` (at most ``max_batch``) into one model call; ``Retired`` tells a caller that came after a
swap to take the new pointer."""

import threading
import time
from concurrent.futures import Future

import numpy as np

_STOP = object()


class Retired(Exception):
    """The batcher was closed after a swap; the caller takes the new pointer and tries again."""


class Batcher:
    """One thread that turns queued images into batched calls of ``fn`` (a float32 [n, S, S, C] →
    probabilities [n, k] function)."""

    def __init__(self, fn, *, max_batch=32, max_wait_ms=5.0, name="batcher"):
        import queue

        self.fn, self.max_batch, self.max_wait = fn, max(1, int(max_batch)), max(0.0, max_wait_ms / 1000.0)
        self.queue = queue.Queue()
        self.calls = self.images = 0
        self.batch_sizes = []  # the last few batch sizes (tests, /metadata)
        # Adaptive wait: the mean gap between arrivals (EWMA). When the next image is not expected
        # within max_wait (one client at a time), a batch of one goes at once instead of idling 5 ms.
        self._last_arrival = None
        self.arrival_gap = float("inf")
        self._lock = threading.Lock()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, arrays) -> list[Future]:
        futures = [Future() for _ in arrays]
        with self._lock:
            if self._closed:
                raise Retired()
            now = time.monotonic()
            if self._last_arrival is not None:
                gap = now - self._last_arrival
                self.arrival_gap = gap if self.arrival_gap == float("inf") else 0.7 * self.arrival_gap + 0.3 * gap
            self._last_arrival = now
            for a, f in zip(arrays, futures):
                self.queue.put((a, f))
        return futures

    def close(self):
        """No new work; what was submitted before is still answered."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self.queue.put(_STOP)

    def _run(self):
        import queue

        stopping = False
        while not stopping:
            first = self.queue.get()
            if first is _STOP:
                break
            items = [first]
            # Wait for neighbours only when they come more often than max_wait; otherwise take what is
            # already queued and go.
            wait = self.max_wait if self.arrival_gap <= self.max_wait else 0.0
            deadline = time.monotonic() + wait
            while len(items) < self.max_batch:
                left = deadline - time.monotonic()
                try:
                    item = self.queue.get(timeout=left) if left > 0 else self.queue.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    stopping = True
                    break
                items.append(item)
            self._call(items)

    def _call(self, items):
        try:
            probs = self.fn(np.stack([a for a, _ in items]))
        except Exception as exc:  # noqa: BLE001 - every waiting request hears of it
            for _, f in items:
                f.set_exception(exc)
            return
        self.calls += 1
        self.images += len(items)
        self.batch_sizes = (self.batch_sizes + [len(items)])[-100:]
        for (_, f), p in zip(items, probs):
            f.set_result(p)
