"""The prediction log's writer: requests put rows on a queue and return; one background thread writes
them in batches (every ``flush_rows`` rows or ``flush_ms``), storing the kept input images as Blobs,
``bulk_create``-ing the rows and then sending ``predictions_logged`` (monitoring's rollups).

Nothing here may fail a prediction: ``put`` never blocks and never raises (a full queue drops the row
and counts it); a failed write is logged and counted, and the thread carries on."""
from __future__ import annotations

import logging
import queue
import threading
import time

from django.db import close_old_connections

log = logging.getLogger("apps.serving.log")

EXT = {"PNG": "png", "JPEG": "jpg", "BMP": "bmp", "TIFF": "tif", "WEBP": "webp", "GIF": "gif"}


class LogWriter:
    def __init__(self, *, flush_rows=256, flush_ms=500, max_queue=50_000, background=True):
        self.flush_rows, self.flush_s = max(1, int(flush_rows)), max(0.001, flush_ms / 1000.0)
        self.queue = queue.Queue(maxsize=max_queue)
        self.background = background
        self.written = self.dropped = self.failed = self.flushes = 0
        self.accepted = 0  # rows queued; every one ends as written or failed
        self._thread = None
        self._stop = threading.Event()
        self._flush_lock = threading.Lock()

    # The request side ------------------------------------------------------------------------------

    def put(self, row: dict) -> bool:
        """Queue one row (the PredictionLog fields, plus ``image``: (bytes, format) when the input is
        kept). Never blocks, never raises."""
        try:
            self.queue.put_nowait(row)
            self.accepted += 1
            if self.background:
                self._ensure_thread()
            return True
        except queue.Full:
            self.dropped += 1
            return False
        except Exception:  # noqa: BLE001 - logging must never fail a prediction
            self.dropped += 1
            log.exception("prediction log: could not queue a row")
            return False

    # The writer side -------------------------------------------------------------------------------

    def _ensure_thread(self):
        if self._thread is None or not self._thread.is_alive():
            with self._flush_lock:
                if self._thread is None or not self._thread.is_alive():
                    self._stop.clear()
                    self._thread = threading.Thread(target=self._run, name="prediction-log-writer", daemon=True)
                    self._thread.start()

    def _run(self):
        while not self._stop.is_set():
            batch = self._take(block=True)
            if batch:
                close_old_connections()  # this thread's own connection (a dropped one is reopened)
                self._write_safely(batch)
        self.flush()

    def _take(self, block):
        """Up to ``flush_rows`` rows: waits for the first (when ``block``), then at most ``flush_s``."""
        batch = []
        try:
            batch.append(self.queue.get(timeout=self.flush_s) if block else self.queue.get_nowait())
        except queue.Empty:
            return batch
        deadline = time.monotonic() + self.flush_s
        while len(batch) < self.flush_rows:
            left = deadline - time.monotonic()
            try:
                batch.append(self.queue.get(timeout=left) if (block and left > 0) else self.queue.get_nowait())
            except queue.Empty:
                break
        return batch

    def flush(self) -> int:
        """Write everything queued now, in the calling thread (tests, shutdown). Returns rows written."""
        n = 0
        while True:
            batch = self._take(block=False)
            if not batch:
                return n
            n += self._write_safely(batch)

    def settle(self, timeout=2.0) -> int:
        """Write what is queued now and wait (at most ``timeout``) for rows the background thread has
        taken but not written yet: when this returns, the rows of every prediction answered before the
        call are in the table ("Try it" shows its own answer in the recent predictions)."""
        target = self.accepted
        n = self.flush()
        deadline = time.monotonic() + timeout
        while self.written + self.failed < target and time.monotonic() < deadline:
            time.sleep(0.005)
        return n

    def stop(self, timeout=10.0):
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self.flush()

    def _write_safely(self, batch) -> int:
        with self._flush_lock:
            try:
                rows = self.write(batch)
            except Exception:  # noqa: BLE001 - counted and logged; predictions already answered
                self.failed += len(batch)
                log.exception("prediction log: %d rows could not be written", len(batch))
                return 0
            self.written += len(rows)
            self.flushes += 1
            try:
                from .signals import predictions_logged
                from .models import PredictionLog

                predictions_logged.send(sender=PredictionLog, logs=rows)
            except Exception:  # noqa: BLE001 - a listener's failure is the listener's
                log.exception("prediction log: a predictions_logged receiver failed")
            return len(rows)

    def write(self, batch):
        """The kept images as Blobs, then the rows in one ``bulk_create`` (one transaction)."""
        from django.db import transaction

        from apps.datasets.storage import blobs_put

        from .models import PredictionLog

        with transaction.atomic():
            kept = [r for r in batch if r.get("image")]
            if kept:
                blobs = blobs_put([(data, EXT.get(fmt, "bin"), f"image/{EXT.get(fmt, 'octet-stream')}", r["input_sha256"])
                                   for r in kept for data, fmt in [r["image"]]])
                for r, blob in zip(kept, blobs):
                    r["input_blob"] = blob
            rows = [PredictionLog(**{k: v for k, v in r.items() if k != "image"}) for r in batch]
            return PredictionLog.objects.bulk_create(rows)
