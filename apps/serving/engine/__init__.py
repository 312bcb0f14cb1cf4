"""Models in memory, micro-batching and hot swap.

``Engine`` keeps, per registered model, a *pointer* to the loaded production version and to the
routing candidate (canary/shadow). Each loaded version has a ``Batcher``: request threads decode and
resize their images themselves (in parallel: Pillow and TensorFlow release the GIL) and hand the
arrays to it; its one thread stacks what arrived within ``max_wait`` (at most ``max_batch`` images)
into one model call.

Swapping: ``refresh`` asks the registry for the current production version and route; a version
not yet in memory is loaded *fully* (sha256 checked against the registry by ``artifact_bytes`` and
again by ``load_model_bytes``; Keras ``safe_mode=True``) before the pointer moves. The old version's
batcher finishes what it was given; a request that picked the old pointer just before the move
retries on the new one, so no request is dropped. A version whose artifact does not match its
registered hash is never loaded: the error is logged and the old pointer stays.

In the web process (``poll=False``) each unpinned request calls ``refresh`` itself (two small
queries; loading happens only on a change). ``manage.py serve`` (``poll=True``) refreshes from a
background thread every ``SERVING_POLL_SECONDS``, so requests touch no table but the token's.

The package: ``batcher`` (the micro-batcher), ``loaded`` (one version in memory, hash-checked
loading), ``routing`` (the engine: pointers, refresh, swap, routes, pinned versions).
"""

from .batcher import Batcher, Retired
from .loaded import ENGINES, ExplainUnavailable, LoadedModel, load_version
from .routing import Engine, ModelUnavailable, Plan, Pointer, get_engine, set_engine

__all__ = [
    "ENGINES",
    "ExplainUnavailable",
    "Batcher",
    "Engine",
    "LoadedModel",
    "ModelUnavailable",
    "Plan",
    "Pointer",
    "Retired",
    "get_engine",
    "load_version",
    "set_engine",
]
