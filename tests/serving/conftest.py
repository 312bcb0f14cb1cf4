"""Serving fixtures: the registry's tiny real Keras models (32x32 grayscale; mean brightness →
class, ``good`` right and ``bad`` wrong on every tiny image), registered and approved through the
real services, and an engine per test whose log writer is flushed by the test (no thread)."""

import pytest

from apps.accounts.models import Role
from apps.serving.engine import Engine, set_engine
from apps.serving.logwriter import LogWriter
from tests.factories import member
from tests.registry.conftest import (  # noqa: F401  (fixtures)
    dv,
    good_run,
    in_production,
    keras_model_bytes,
    make_run,
    png,
    register,
    second_manager,
    tiny_dataset_version,
)


@pytest.fixture
def engine():
    eng = Engine(poll=False, writer=LogWriter(background=False, flush_rows=1000, flush_ms=10))
    old = set_engine(eng)
    yield eng
    eng.stop()
    set_engine(old)


@pytest.fixture
def served(in_production, engine):
    """v1 of ``screws`` in production (classes defect, good)."""
    return in_production()


@pytest.fixture
def staging(project, dv, register, people):
    """A second version in staging: the ``bad`` model (it says the opposite of production)."""
    from apps.registry import services

    def do(kind="bad"):
        v = register(make_run(project, dv, kind), name="screws")
        services.model_version_stage_set(version=v, user=people["ds"], stage="staging", reason="try it")
        v.refresh_from_db()
        return v

    return do


@pytest.fixture
def client_for():
    from django.test import Client

    def make(user):
        c = Client()
        if user is not None:
            c.force_login(user)
        return c

    return make


@pytest.fixture
def ds_pm(project):
    return member(project, Role.PM, username="pm2")


def predict_url(project, model="screws"):
    return f"/api/v1/projects/{project.slug}/serving/models/{model}/predict/"


def variant_model_bytes(kind, scale):
    """Another real tiny model (same rule as ``good``, other weights, so another sha256)."""
    import os
    import tempfile

    import keras
    import numpy as np

    from tests.registry import conftest as reg

    if kind not in reg._MODELS:
        inputs = keras.Input((reg.SIZE, reg.SIZE, 1), name="image")
        x = keras.layers.GlobalAveragePooling2D()(keras.layers.Rescaling(1 / 255.0)(inputs))
        dense = keras.layers.Dense(2, activation="softmax")
        model = keras.Model(inputs, dense(x))
        dense.set_weights([np.array([[scale, -scale]]), np.array([-scale / 2, scale / 2])])
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "model.keras")
            model.save(path)
            with open(path, "rb") as fh:
                reg._MODELS[kind] = fh.read()
    return reg._MODELS[kind]


@pytest.fixture
def promote(project, dv, in_production):
    """Approve a new ``good``-like version (other weights, other sha256) into production."""

    def do(kind="good2", scale=30.0):
        variant_model_bytes(kind, scale)
        return in_production(run=make_run(project, dv, kind))

    return do
