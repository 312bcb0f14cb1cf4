"""Random search over continuous and log-uniform ranges, and sweeps that never build the Cartesian
product (a huge random space is sampled by combination number; a huge grid is counted and refused)."""

import math
import time
import tracemalloc

import pytest
from django.core.exceptions import ValidationError

from apps.training import services
from apps.training.forms import _values
from apps.training.models import TrainingRun

from .conftest import TINY

pytestmark = pytest.mark.django_db


def test_a_log_uniform_range_spreads_over_its_decades(project, people, version):
    sweep = services.sweep_create(
        project=project,
        user=people["ds"],
        dataset_version=version,
        base_config=TINY,
        method="random",
        max_trials=32,
        space={
            "learning_rate": {"min": 1e-5, "max": 1e-2, "log": True},
            "dropout": {"min": 0.0, "max": 0.5},
            "batch_size": [4, 8],
        },
    )
    configs = [r.config for r in TrainingRun.objects.filter(sweep=sweep)]
    assert len(configs) == 32
    lrs = [c["learning_rate"] for c in configs]
    assert all(1e-5 <= lr <= 1e-2 for lr in lrs) and len(set(lrs)) == 32  # continuous, not a grid's points
    decades = {math.floor(math.log10(lr)) for lr in lrs}
    assert decades == {-5, -4, -3}  # log-uniform: each decade gets draws (uniform would put ~90 % in the last)
    assert all(0.0 <= c["dropout"] <= 0.5 for c in configs) and {c["batch_size"] for c in configs} <= {4, 8}


def test_random_search_over_a_huge_list_space_never_builds_the_product():
    space = {k: list(range(1, 41)) for k in ("epochs", "batch_size", "image_size", "seed", "top_k")}  # 40**5 ≈ 1e8
    tracemalloc.start()
    started = time.perf_counter()
    trials = services.sweep_trials(method="random", space=space, max_trials=32, seed=7)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert len(trials) == 32 and len({tuple(sorted(t.items())) for t in trials}) == 32  # distinct combinations
    assert peak < 1_000_000, peak  # a materialized product would take gigabytes
    assert time.perf_counter() - started < 5


def test_a_huge_grid_is_counted_and_refused_and_ranges_need_random_search(project, people, version):
    huge = {k: list(range(16, 56)) for k in ("epochs", "batch_size", "image_size", "seed")}
    with pytest.raises(ValidationError, match="2,560,000 combinations"):
        services.sweep_create(
            project=project, user=people["ds"], dataset_version=version, base_config=TINY, method="grid", space=huge
        )
    cases = [
        ({"learning_rate": {"min": 1e-3, "max": 1e-2}}, "grid", "needs random search"),
        ({"learning_rate": {"min": 1e-2, "max": 1e-3}}, "random", "must be below its max"),
        ({"dropout": {"min": 0.0, "max": 0.5, "log": True}}, "random", "needs a min above 0"),
        ({"learning_rate": {"min": 1e-3, "max": 5.0}}, "random", "learning_rate must be between"),
        ({"optimizer": {"min": 1, "max": 2}}, "random", "optimizer"),
        ({"learning_rate": {"low": 1e-3}}, "random", "a range is"),
    ]
    for space, method, words in cases:
        with pytest.raises(ValidationError) as exc:
            services.sweep_create(
                project=project,
                user=people["ds"],
                dataset_version=version,
                base_config=TINY,
                method=method,
                space=space,
            )
        assert words in " ".join(exc.value.message_dict["space"]), (space, exc.value.message_dict)
    assert not TrainingRun.objects.exists()


def test_the_form_reads_ranges():
    assert _values("1e-5..1e-2 log", float) == {"min": 1e-5, "max": 1e-2, "log": True}
    assert _values("0.1..0.4", float) == {"min": 0.1, "max": 0.4, "log": False}
    assert _values("0.001, 0.0003", float) == [0.001, 0.0003]
    with pytest.raises(ValidationError):
        _values("1..2 sideways", float)
