"""Sweeps: their trials drawn (grid or random over ranges), launched as runs, and settled."""

import itertools
import logging
import math
import random

from django.core.exceptions import ValidationError
from django.db import transaction

from apps.core.audit import audit_record
from apps.core.jobs import JobStatus, launches_jobs
from apps.core.text import clean_name

from ..ml.config import INTEGER_FIELDS, SWEEPABLE, config_errors
from ..models import Sweep
from .checks import MAX_SWEEP_TRIALS, RANGE_FIELDS, SWEEP_METRICS, _checked
from .runs import sweep_refresh, training_run_cancel, training_run_create

log = logging.getLogger(__name__)

# Sweeps --------------------------------------------------------------------------------------------


def is_range(values):
    return isinstance(values, dict)


def grid_size(space):
    """How many combinations a grid over ``space`` has, counted without building them."""
    return math.prod(len(v) for v in space.values())


def sweep_trials(*, method, space, max_trials, seed=0):
    """The list of hyperparameter dicts a sweep will run. ``space``: {name: [values]} or, for random
    search, {name: {"min", "max", "log"}} drawn uniformly (or log-uniformly) in the range. The
    Cartesian product is never built: a grid is walked lazily, and random search over lists alone
    draws distinct combination numbers and decodes them."""
    keys = sorted(space)
    rng = random.Random(seed)
    if method == Sweep.GRID:
        return [dict(zip(keys, combo)) for combo in itertools.product(*(space[k] for k in keys))]
    if not any(is_range(space[k]) for k in keys):
        total = grid_size(space)
        picks = rng.sample(range(total), min(max_trials, total))  # a range object: nothing materialized
        trials = []
        for n in picks:
            combo = {}
            for k in reversed(keys):
                n, i = divmod(n, len(space[k]))
                combo[k] = space[k][i]
            trials.append({k: combo[k] for k in keys})
        return trials
    trials = []
    for _ in range(max_trials):
        combo = {}
        for k in keys:
            v = space[k]
            if not is_range(v):
                combo[k] = rng.choice(v)
                continue
            lo, hi = float(v["min"]), float(v["max"])
            x = math.exp(rng.uniform(math.log(lo), math.log(hi))) if v.get("log") else rng.uniform(lo, hi)
            combo[k] = int(round(x)) if k in INTEGER_FIELDS else float(f"{x:.6g}")
        trials.append(combo)
    return trials


def _range_errors(key, value, method):
    """Why a range ``value`` for ``key`` cannot be searched (empty list: it can)."""
    if method != Sweep.RANDOM:
        return [f"{key}: a range needs random search (a grid takes a list of values)."]
    if set(value) - {"min", "max", "log"} or "min" not in value or "max" not in value:
        return [f'{key}: a range is {{"min": …, "max": …, "log": true|false}}.']
    lo, hi = value["min"], value["max"]
    problems = [m for m in (config_errors({key: lo}).get(key), config_errors({key: hi}).get(key)) if m]
    if problems:
        return problems
    if key not in RANGE_FIELDS:
        return [f"{key} takes a list of values, not a range."]
    if not lo < hi:
        return [f"{key}: the range's min ({lo:g}) must be below its max ({hi:g})."]
    if value.get("log") and lo <= 0:
        return [f"{key}: a log-uniform range needs a min above 0."]
    if not isinstance(value.get("log", False), bool):
        return [f"{key}: log must be true or false."]
    return []


@launches_jobs
@transaction.atomic
def sweep_create(
    *,
    project,
    user,
    dataset_version,
    base_config=None,
    space,
    method="grid",
    max_trials=4,
    metric="val_accuracy",
    name="",
):
    version, base = _checked(project, dataset_version, base_config)
    if base["architecture"] == "finetune":
        raise ValidationError({"base_config": ["Sweeps use the built-in architectures; fine-tune in a single run."]})
    errors = {}
    if method not in (Sweep.GRID, Sweep.RANDOM):
        errors["method"] = [f"method must be grid or random, not {method!r}."]
    if metric not in SWEEP_METRICS:
        errors["metric"] = [f"metric must be one of {', '.join(SWEEP_METRICS)}, not {metric!r}."]
    if not isinstance(space, dict) or not space:
        errors["space"] = ["Choose at least one hyperparameter to search, with its candidate values."]
    else:
        for key, values in space.items():
            if key not in SWEEPABLE:
                errors.setdefault("space", []).append(f"{key} cannot be swept; choose from {', '.join(SWEEPABLE)}.")
            elif is_range(values):
                problems = _range_errors(key, values, method)
                if problems:
                    errors.setdefault("space", []).extend(problems)
            elif not isinstance(values, list) or not values:
                errors.setdefault("space", []).append(
                    f"{key}: give a non-empty list of values, or a range "
                    '{"min": …, "max": …, "log": true} for random search.'
                )
            else:
                for v in values:
                    bad = config_errors({key: v})
                    if bad:
                        errors.setdefault("space", []).append(bad[key])
    if not isinstance(max_trials, int) or not 1 <= max_trials <= MAX_SWEEP_TRIALS:
        errors["max_trials"] = [f"max_trials must be between 1 and {MAX_SWEEP_TRIALS}."]
    if errors:
        raise ValidationError(errors)
    if method == Sweep.GRID and grid_size(space) > MAX_SWEEP_TRIALS:  # counted, never built
        raise ValidationError(
            {
                "space": [
                    f"The grid has {grid_size(space):,} combinations, over the "
                    f"{MAX_SWEEP_TRIALS} limit; use random search or fewer values."
                ]
            }
        )
    trials = sweep_trials(method=method, space=space, max_trials=max_trials, seed=base["seed"])
    sweep = Sweep.objects.create(
        project=project,
        dataset_version=version,
        name=clean_name(name)[:120],
        method=method,
        base_config=base,
        space=space,
        max_trials=len(trials),
        metric=metric,
        created_by=user if getattr(user, "is_authenticated", False) else None,
    )
    for i, params in enumerate(trials):
        training_run_create(
            project=project,
            user=user,
            dataset_version=version,
            config={**base, **params},
            name=f"{sweep.name or 'sweep'} #{sweep.pk}.{i + 1}",
            sweep=sweep,
            trial_index=i,
        )
    audit_record(
        actor=user,
        action="sweep.launch",
        project=project,
        obj=sweep,
        data={"method": method, "space": space, "trials": len(trials), "metric": metric},
    )
    return sweep


def sweep_cancel(*, sweep, user):
    for run in sweep.runs.filter(status__in=JobStatus.ACTIVE):
        try:
            training_run_cancel(run=run, user=user)
        except ValidationError:
            pass  # it finished meanwhile
    audit_record(actor=user, action="sweep.cancel", project=sweep.project, obj=sweep)
    return sweep_refresh(sweep_id=sweep.pk)
