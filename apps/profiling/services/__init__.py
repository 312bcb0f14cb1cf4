"""Profiling writes, one concern per module, re-exported here so callers import from
``apps.profiling.services`` as before. Names other apps call (keep them): ``profile_run_start(*,
version, user)`` (a version that becomes ready), ``gate_check(version) -> GateResult`` and
``gate_override(*, version, user, reason)`` (training, before it launches a run).

- ``runs``: profile runs started, executed in batches by a worker, cancelled;
- ``profile``: the profile built from the measured images (groups, outliers, duplicates, agreement);
- ``rules``: the project's data assertions and their checks;
- ``gate``: the data-quality gate and a manager's override.
"""

from .gate import GateResult, gate_check, gate_override, latest_succeeded_run
from .profile import agreement_for_version, profile_build
from .rules import DEFAULT_DOCUMENT, assertion_rules_for, assertions_replace
from .runs import BATCH, profile_run_cancel, profile_run_execute, profile_run_start

__all__ = [
    "BATCH",
    "DEFAULT_DOCUMENT",
    "GateResult",
    "agreement_for_version",
    "assertion_rules_for",
    "assertions_replace",
    "gate_check",
    "gate_override",
    "latest_succeeded_run",
    "profile_build",
    "profile_run_cancel",
    "profile_run_execute",
    "profile_run_start",
]
