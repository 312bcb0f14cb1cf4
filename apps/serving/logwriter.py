"""The prediction log's writer: a durable spool on local disk, then the database.

A request hands its rows to ``put``: they are appended to the spool (``spool.Spool``, a group
commit: written and flushed to disk together with the other requests' rows of the moment) before
the prediction is answered, so a row whose answer went out is on disk. One background thread (the
drainer) moves the spool into the database in batches (every ``flush_rows`` rows, or every
``flush_ms``): the kept input images as Blobs, the rows in one ``bulk_create``, then
``predictions_logged`` (monitoring's rollups). While the database is down the rows wait in the
spool and drain when it is back; at start the spool left by a killed process is replayed. Each row
carries a ``log_key`` of its own (unique in the table): a replay never writes a row twice.

Nothing here may fail a prediction: a full spool (``SERVING_SPOOL_MAX_BYTES``) or a full disk loses
the rows, never the answer; every lost row is counted with its reason (``lost``), and the drainer
stores the counts as ``PredictionLogLoss`` rows and sends ``predictions_lost`` (monitoring alerts)."""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
import threading
import time
import uuid
from collections import Counter

from django.db import DatabaseError, IntegrityError, close_old_connections

from apps.core.storage import blobs_put
from apps.projects.models import Project
from apps.registry.models import RegisteredModel

from .models import PredictionLog, PredictionLogLoss
from .signals import predictions_logged, predictions_lost
from .spool import Spool

log = logging.getLogger("apps.serving.log")

EXT = {"PNG": "png", "JPEG": "jpg", "BMP": "bmp", "TIFF": "tif", "WEBP": "webp", "GIF": "gif"}


def encode(row: dict) -> bytes:
    """One spool line: the PredictionLog fields, the kept image base64-encoded."""
    out = dict(row)
    out["created_at"] = row["created_at"].isoformat()
    if row.get("image"):
        data, fmt = row["image"]
        out["image"] = [base64.b64encode(data).decode("ascii"), fmt]
    else:
        out.pop("image", None)
    return json.dumps(out, separators=(",", ":")).encode() + b"\n"


def decode(line: bytes) -> dict:
    row = json.loads(line)
    row["created_at"] = dt.datetime.fromisoformat(row["created_at"])
    if row.get("image"):
        row["image"] = (base64.b64decode(row["image"][0]), row["image"][1])
    return row


class LogWriter:
    def __init__(self, *, directory=None, flush_rows=None, flush_ms=None, max_bytes=None, background=True):
        from django.conf import settings

        self.flush_rows = max(1, int(flush_rows or settings.SERVING_LOG_FLUSH_ROWS))
        self.flush_s = max(0.001, (flush_ms if flush_ms is not None else settings.SERVING_LOG_FLUSH_MS) / 1000.0)
        self.spool = Spool(
            directory or settings.SERVING_SPOOL_DIR,
            max_bytes=max_bytes or settings.SERVING_SPOOL_MAX_BYTES,
            on_lost=self._lost,
        )
        self.background = background
        self.written = 0  # rows now in the database
        self.replayed = 0  # of which came from a stopped process's spool
        self.duplicates = 0  # spooled rows the database already had (a replay after a crash)
        self.failed = 0  # database writes that failed (their rows wait in the spool)
        self.flushes = 0
        self.last_error = ""
        self.lost = Counter()  # (project id, registered model id, reason) → rows lost, not yet stored
        self.lost_total = 0
        self._lost_lock = threading.Lock()
        self._drain_lock = threading.Lock()
        self._thread = None
        self._stop = threading.Event()
        self._orphans_checked = 0.0

    @property
    def dropped(self):  # the older name of ``lost_total`` (API and /stats keep it)
        return self.lost_total

    # The request side ------------------------------------------------------------------------------

    def put(self, rows, *, wait=True) -> bool:
        """Spool ``rows`` (the PredictionLog fields, plus ``image``: (bytes, format) when the input is
        kept). With ``wait``, returns once they are on disk: True, or False when they were lost
        (counted). Never raises."""
        if isinstance(rows, dict):
            rows = [rows]
        try:
            lines, meta = [], []
            for r in rows:
                r.setdefault("log_key", uuid.uuid4().hex)
                lines.append(encode(r))
                meta.append((r.get("project_id"), r.get("registered_model_id")))
            ok = self.spool.append(b"".join(lines), meta, wait=wait)
        except Exception:
            log.exception("prediction log: could not spool %d rows", len(rows))
            self._lost([(r.get("project_id"), r.get("registered_model_id")) for r in rows], "spool error")
            ok = False
        if self.background:
            self._ensure_thread()
        return ok is not False

    def _lost(self, meta, reason):
        with self._lost_lock:
            for project_id, rm_id in meta:
                self.lost[(project_id, rm_id, reason)] += 1
            self.lost_total += len(meta)

    # The drainer ------------------------------------------------------------------------------------

    def start(self):
        """Start draining now (the serving process: replay what a stopped process left at once)."""
        self.background = True
        self._ensure_thread()

    def _ensure_thread(self):
        if self._thread is None or not self._thread.is_alive():
            with self._drain_lock:
                if self._thread is None or not self._thread.is_alive():
                    self._stop.clear()
                    self._thread = threading.Thread(target=self._run, name="prediction-log-drainer", daemon=True)
                    self._thread.start()

    def _run(self):
        backoff = 0.0
        while not self._stop.is_set():
            close_old_connections()  # this thread's own connection (a dropped one is reopened)
            try:
                moved = self.drain(limit_batches=8)
                backoff = 0.0
            except DatabaseError as exc:
                self.failed += 1
                self.last_error = str(exc).strip()[:300]
                backoff = min(5.0, max(0.2, backoff * 2))
                log.warning(
                    "prediction log: database unavailable (%s); rows wait in the spool (retry in %.1fs)",
                    self.last_error,
                    backoff,
                )
                self._stop.wait(backoff)
                continue
            except Exception:
                self.failed += 1
                log.exception("prediction log: the drainer failed; retrying")
                self._stop.wait(1.0)
                continue
            if moved < self.flush_rows:  # less than a full batch waiting: the next in flush_ms
                self._stop.wait(self.flush_s)

    def drain(self, limit_batches=None) -> int:
        """Move spooled rows into the database (at most ``limit_batches`` batches). Returns rows
        written. Raises DatabaseError when the database is unreachable (nothing is lost: the rows
        stay spooled)."""
        n = batches = 0
        with self._drain_lock:
            self.spool.sync()
            now = time.monotonic()
            if now - self._orphans_checked > 5.0:
                self._orphans_checked = now
                self.spool.adopt_orphans()
            self._store_losses()
            while limit_batches is None or batches < limit_batches:
                seg, lines, end = self.spool.read(limit_records=self.flush_rows)
                if seg is None:
                    break
                rows, bad = [], 0
                for line in lines:
                    try:
                        rows.append(decode(line))
                    except (ValueError, KeyError, TypeError):
                        bad += 1
                if bad:
                    log.error("prediction log: %d unreadable spool lines in %s", bad, seg.path.name)
                    self._lost([(None, None)] * bad, "unreadable in the spool")
                # Only a replayed segment can hold rows the database already has (written by a
                # process killed before it recorded its offset); this process's own never can.
                written = self._write_batch(rows, check_duplicates=not seg.mine)
                if not seg.mine:
                    self.replayed += written
                self.spool.advance(seg, end)
                n += written
                batches += 1
        return n

    def flush(self) -> int:
        """Write everything spooled now, in the calling thread (tests, "Try it", shutdown). Returns
        rows written; 0 when the database is unreachable (the rows stay spooled)."""
        try:
            return self.drain()
        except DatabaseError as exc:
            self.failed += 1
            self.last_error = str(exc).strip()[:300]
            log.warning("prediction log: database unavailable (%s); rows wait in the spool", self.last_error)
            return 0

    def settle(self) -> int:
        """Write what is spooled now: when this returns, the rows of every prediction answered before
        the call are in the table ("Try it" shows its own answer in the recent predictions)."""
        return self.flush()

    def stop(self, timeout=10.0):
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self.flush()
        self.spool.close()

    def pending_bytes(self):
        return self.spool.pending_bytes()

    def stats(self):
        return {
            "written": self.written,
            "lost": self.lost_total,
            "dropped": self.lost_total,
            "failed": self.failed,
            "replayed": self.replayed,
            "duplicates": self.duplicates,
            "spooled_bytes": self.pending_bytes(),
            "last_error": self.last_error,
        }

    # Writing a batch --------------------------------------------------------------------------------

    def _write_batch(self, rows, *, check_duplicates=True) -> int:
        if not rows:
            return 0

        fresh = rows
        if check_duplicates:
            have = set(
                PredictionLog.objects.filter(log_key__in=[r["log_key"] for r in rows]).values_list("log_key", flat=True)
            )
            fresh = [r for r in rows if r["log_key"] not in have]
        self.duplicates += len(rows) - len(fresh)
        if not fresh:
            return 0
        try:
            stored = self.write(fresh)
        except IntegrityError:
            # A row the database refuses (its model version deleted meanwhile…): the others one by one.
            stored = []
            for r in fresh:
                try:
                    stored += self.write([r])
                except IntegrityError as exc:
                    log.error("prediction log: row %s refused by the database: %s", r.get("log_key"), exc)
                    self._lost([(r.get("project_id"), r.get("registered_model_id"))], "refused by the database")
        self.written += len(stored)
        self.flushes += 1
        try:
            predictions_logged.send(sender=PredictionLog, logs=stored)
        except Exception:
            log.exception("prediction log: a predictions_logged receiver failed")
        return len(stored)

    def write(self, batch):
        """The kept images as Blobs, then the rows in one ``bulk_create`` (one transaction)."""
        from django.db import transaction

        with transaction.atomic():
            kept = [r for r in batch if r.get("image")]
            if kept:
                blobs = blobs_put(
                    [
                        (data, EXT.get(fmt, "bin"), f"image/{EXT.get(fmt, 'octet-stream')}", r["input_sha256"])
                        for r in kept
                        for data, fmt in [r["image"]]
                    ]
                )
                for r, blob in zip(kept, blobs):
                    r["input_blob"] = blob
            rows = [PredictionLog(**{k: v for k, v in r.items() if k != "image"}) for r in batch]
            return PredictionLog.objects.bulk_create(rows)

    def _store_losses(self):
        """The counted losses as PredictionLogLoss rows (when the database takes them), then
        ``predictions_lost`` (monitoring opens an alert)."""
        with self._lost_lock:
            if not self.lost:
                return
            pending, self.lost = self.lost, Counter()
        from django.utils import timezone

        try:
            # A project or model deleted meanwhile: the count stays, unattributed.
            projects = set(Project.objects.filter(pk__in={p for p, _, _ in pending}).values_list("pk", flat=True))
            models = set(RegisteredModel.objects.filter(pk__in={m for _, m, _ in pending}).values_list("pk", flat=True))
            losses = PredictionLogLoss.objects.bulk_create(
                [
                    PredictionLogLoss(
                        project_id=p if p in projects else None,
                        registered_model_id=rm if rm in models else None,
                        reason=reason,
                        count=count,
                        at=timezone.now(),
                    )
                    for (p, rm, reason), count in pending.items()
                ]
            )
        except Exception:
            with self._lost_lock:
                self.lost.update(pending)  # counted again next time
            raise
        try:
            predictions_lost.send(sender=PredictionLogLoss, losses=losses)
        except Exception:
            log.exception("prediction log: a predictions_lost receiver failed")
