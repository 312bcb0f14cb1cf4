"""The engine: per registered model, a pointer to the loaded production version and the routing
candidate (canary/shadow); refresh and hot swap; pinned versions; the process's engine."""

from __future__ import annotations

import logging
import random
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
from django.conf import settings
from django.utils import timezone

from apps.registry.models import RegisteredModel
from apps.registry.selectors import production_of, version_resolve

from ..logwriter import LogWriter
from ..models import RouteMode, ServingRoute
from .batcher import Retired
from .loaded import LoadedModel, load_version

log = logging.getLogger("apps.serving")

RETRY_REFUSED_S = 30.0  # a refused artifact is tried again at most this often (the log stays readable)


class ModelUnavailable(Exception):
    """No loadable version answers this request (none in production, or its artifact is refused)."""


@dataclass
class Pointer:
    """What one registered model's unpinned traffic goes to."""

    production: LoadedModel | None = None
    mode: str = "off"
    candidate: LoadedModel | None = None
    share: float = 0.0
    checked_at: float = 0.0
    error: str = ""
    engine: str = "keras"  # the route's engine, for this model's versions (pinned ones too)


@dataclass
class Plan:
    answer: LoadedModel
    route: str  # production | canary | pinned
    shadow: LoadedModel | None = None


class Engine:
    def __init__(self, *, poll=False, writer=None):
        self.poll = poll
        self.models: dict[tuple, LoadedModel] = {}  # (version id, engine) → loaded
        self.pinned = OrderedDict()  # version id → LoadedModel (LRU of versions asked for by name)
        self.pointers: dict[int, Pointer] = {}
        self._lock = threading.RLock()
        self._load_locks: dict[int, threading.Lock] = {}
        self.writer = writer or LogWriter()
        self.load_errors: dict[int, tuple] = {}  # version id → (why it was refused, when)
        self.swaps = 0
        self._poller = None
        self._stop = threading.Event()

    # Loading ---------------------------------------------------------------------------------------

    def model_for(self, version, engine="keras") -> LoadedModel:
        """The loaded ``version`` on ``engine``, loading it once (concurrent callers wait for the one load)."""
        key = (version.pk, engine)
        with self._lock:
            if key in self.models:
                return self.models[key]
            lock = self._load_locks.setdefault(key, threading.Lock())
        with lock:
            with self._lock:
                if key in self.models:
                    return self.models[key]
            refused = self.load_errors.get(key)
            if refused and time.monotonic() - refused[1] < RETRY_REFUSED_S:
                raise ModelUnavailable(f"{version} cannot be loaded on {engine}: {refused[0]}")
            try:
                loaded = load_version(version, engine=engine)
            except Exception as exc:
                self.load_errors[key] = (str(exc), time.monotonic())
                log.error("serving: refusing to load %s on %s: %s", version, engine, exc)
                raise ModelUnavailable(f"{version} cannot be loaded on {engine}: {exc}") from exc
            with self._lock:
                self.models[key] = loaded
                self.load_errors.pop(key, None)
            log.info("serving: loaded %s (sha256 %s…)", version, loaded.sha256[:12])
            return loaded

    def _retire_unused(self):
        with self._lock:
            used = {id(m) for p in self.pointers.values() for m in (p.production, p.candidate) if m is not None}
            used |= {id(m) for m in self.pinned.values()}
            for vid, m in list(self.models.items()):
                if id(m) not in used:
                    del self.models[vid]
                    m.batcher.close()
                    log.info("serving: unloaded %r", m)

    # The registry's current state ------------------------------------------------------------------

    def refresh(self, registered_model) -> Pointer:
        """Bring the model's pointer to the registry's production version and route. New versions are
        loaded completely before the pointer moves; a refused one leaves the old pointer in place."""

        prod = production_of(registered_model)
        route = (
            ServingRoute.objects.filter(registered_model=registered_model)
            .select_related("candidate__registered_model")
            .first()
        )
        engine = route.engine if route else "keras"
        old = self.pointers.get(registered_model.pk) or Pointer()
        new = Pointer(
            production=old.production,
            mode=RouteMode.OFF,
            candidate=None,
            share=0.0,
            checked_at=time.monotonic(),
            engine=engine,
        )
        errors = []
        if prod is None:
            new.production = None
        elif old.production is None or old.production.version_id != prod.pk or old.production.engine != engine:
            try:
                new.production = self.model_for(prod, engine)
            except ModelUnavailable as exc:
                errors.append(str(exc))  # keep serving the old version (or none)
        if route and route.mode != RouteMode.OFF and route.candidate_id:
            cand = route.candidate
            if prod is not None and cand.pk == prod.pk:
                pass  # the candidate was promoted: nothing left to compare
            else:
                try:
                    new.candidate = self.model_for(cand, engine)
                    new.mode, new.share = route.mode, float(route.canary_share)
                except ModelUnavailable as exc:
                    errors.append(str(exc))
        new.error = "; ".join(errors)
        with self._lock:
            changed = old.production is not new.production
            self.pointers[registered_model.pk] = new
            if changed:
                self.swaps += 1
                if old.production is not None and new.production is not None:
                    log.info(
                        "serving: %s now answers from v%s (was v%s)",
                        registered_model.name,
                        new.production.number,
                        old.production.number,
                    )
        self._retire_unused()
        return new

    def refresh_all(self, project=None):

        qs = RegisteredModel.objects.filter(versions__stage="production").distinct()
        if project is not None:
            qs = qs.filter(project=project)
        known = set(self.pointers)
        for rm in list(qs) + list(RegisteredModel.objects.filter(pk__in=known)):
            try:
                self.refresh(rm)
            except Exception:
                log.exception("serving: refreshing %s failed", rm)

    def start_polling(self, interval=None, project=None):
        interval = settings.SERVING_POLL_SECONDS if interval is None else interval

        def loop():
            from django.db import close_old_connections

            while not self._stop.wait(interval):
                close_old_connections()
                self.refresh_all(project)

        self._poller = threading.Thread(target=loop, name="registry-poller", daemon=True)
        self._poller.start()

    def stop(self):
        self._stop.set()
        self.writer.stop()
        with self._lock:
            for m in self.models.values():
                m.batcher.close()

    # Routing ---------------------------------------------------------------------------------------

    def plan(self, registered_model, ref=None, *, request_id="") -> Plan:

        if ref not in (None, ""):
            version = version_resolve(registered_model, ref)  # Http404 naming what is missing
            with self._lock:
                ptr = self.pointers.get(registered_model.pk)
                if ptr and ptr.production and ptr.production.version_id == version.pk:
                    return Plan(ptr.production, "pinned")
            if ptr is not None and self.poll:  # the serving process: the polled pointer knows the engine
                engine = ptr.engine
            else:
                route = ServingRoute.objects.filter(registered_model=registered_model).only("engine").first()
                engine = route.engine if route else "keras"
            loaded = self.model_for(version, engine)
            with self._lock:
                self.pinned[version.pk] = loaded
                self.pinned.move_to_end(version.pk)
                while len(self.pinned) > settings.SERVING_MAX_LOADED:
                    self.pinned.popitem(last=False)
            self._retire_unused()
            return Plan(loaded, "pinned")
        ptr = self.pointers.get(registered_model.pk)
        if ptr is None or not self.poll:
            ptr = self.refresh(registered_model)
        if ptr.production is None:
            raise ModelUnavailable(ptr.error or f"{registered_model.name} has no production version.")
        if ptr.candidate is not None and ptr.mode == "canary" and _draw(request_id) < ptr.share:
            return Plan(ptr.candidate, "canary")
        if ptr.candidate is not None and ptr.mode == "shadow":
            return Plan(ptr.production, "production", shadow=ptr.candidate)
        return Plan(ptr.production, "production")

    # Predicting ------------------------------------------------------------------------------------

    def predict(self, registered_model, decoded, *, ref=None, request_id=None, started=None):
        """Answer ``decoded`` inputs (inputs.Decoded): returns (plan, [result dicts]). Logs one row
        per input (and per shadow prediction) through the writer, off the request path."""
        request_id = request_id or uuid.uuid4().hex
        started = started or time.perf_counter()
        for _attempt in range(5):
            plan = self.plan(registered_model, ref, request_id=request_id)
            arrays = [d.array(**plan.answer.spec()) for d in decoded]
            prep_ms = (time.perf_counter() - started) * 1000.0
            try:
                probs = [f.result() for f in plan.answer.batcher.submit(arrays)]
                break
            except Retired:  # swapped between plan and submit: take the new pointer
                if not self.poll:
                    self.pointers.pop(registered_model.pk, None)
                continue
        else:
            raise ModelUnavailable("the model was swapped repeatedly during this request; try again")
        latency_ms = (time.perf_counter() - started) * 1000.0
        now = timezone.now()
        results = [_result(plan.answer, p) for p in probs]
        try:
            rows = [
                self._row(plan.answer, plan.route, d, r, latency_ms, request_id, now) for d, r in zip(decoded, results)
            ]
        except Exception:
            log.exception("serving: could not make the prediction log rows")
            rows = []
        self._log(rows)
        if plan.shadow is not None:
            self._shadow(plan.shadow, decoded, request_id, now, prep_ms)
        return plan, results

    def _shadow(self, loaded, decoded, request_id, now, prep_ms):
        """Send the inputs to the shadow version too; log its answers when they come, never wait. Its
        latency is the request's decoding time plus its own model time (what it would have taken)."""
        t0 = time.perf_counter() - prep_ms / 1000.0
        try:
            arrays = [d.array(**loaded.spec()) for d in decoded]
            futures = loaded.batcher.submit(arrays)
        except Exception:
            log.exception("serving: shadow %r could not take the request", loaded)
            return
        for d, f in zip(decoded, futures):

            def done(fut, d=d):
                try:
                    r = _result(loaded, fut.result())
                    self._log(
                        [self._row(loaded, "shadow", d, r, (time.perf_counter() - t0) * 1000.0, request_id, now)],
                        wait=False,
                    )
                except Exception:
                    log.exception("serving: shadow prediction failed")

            f.add_done_callback(done)

    @staticmethod
    def _row(loaded, route, d, result, latency_ms, request_id, now):
        keep = (
            result["confidence"] < settings.SERVING_LOW_CONFIDENCE or random.random() < settings.SERVING_LOG_SAMPLE_RATE
        )
        return {
            "project_id": loaded.project_id,
            "registered_model_id": loaded.registered_model_id,
            "model_version_id": loaded.version_id,
            "created_at": now,
            "request_id": request_id[:64],
            "batch_index": d.index,
            "route": route,
            "latency_ms": float(latency_ms),
            "input_sha256": d.sha256,
            "input_stats": d.stats,
            "predicted_class": result["class"],
            "confidence": result["confidence"],
            "probabilities": result["probabilities"],
            "image": (d.data, d.format) if keep else None,
        }

    def _log(self, rows, wait=True):
        """The rows into the durable spool: with ``wait`` (the answered predictions), on disk before
        the answer goes out. Never raises (the writer counts what it loses)."""
        if settings.SERVING_LOG_ENABLED:
            self.writer.put(rows, wait=wait)

    def state(self):
        with self._lock:
            return {
                rm_id: {
                    "production": p.production and p.production.number,
                    "mode": p.mode,
                    "candidate": p.candidate and p.candidate.number,
                    "share": p.share,
                    "error": p.error,
                }
                for rm_id, p in self.pointers.items()
            }


def _result(loaded, probs):
    best = int(np.argmax(probs))
    return {
        "class": loaded.classes[best],
        "confidence": float(probs[best]),
        "probabilities": {c: float(p) for c, p in zip(loaded.classes, probs)},
    }


def _draw(request_id):
    """A number in [0, 1) fixed by the request id (a retried request takes the same route)."""
    import hashlib

    return int.from_bytes(hashlib.sha256(str(request_id).encode()).digest()[:8], "big") / 2**64


_engine = None
_engine_lock = threading.Lock()


def get_engine() -> Engine:
    """This process's engine (the web process makes one on first use; ``serve`` installs its own)."""
    global _engine
    if _engine is None:
        with _engine_lock:
            if _engine is None:
                import atexit

                _engine = Engine(poll=False)
                atexit.register(_flush_at_exit, _engine)  # a web worker's last rows are written too
    return _engine


def _flush_at_exit(engine):
    try:
        engine.writer.flush()
    except Exception:
        log.exception("serving: the prediction log could not be flushed at exit")


def set_engine(engine):
    global _engine
    old, _engine = _engine, engine
    return old
