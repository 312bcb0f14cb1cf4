"""Blobs moved from datasets to core without moving a row: a database made before the move keeps
its blobs and the items that point at them (the table stays ``datasets_blob``)."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [
    ("projects", "0001_initial"),  # the Project model the rows below are made with
    ("core", "0001_initial"),
    ("datasets", "0004_version_split_from"),
    ("training", "0005_run_estimate"),
    ("serving", "0004_predictionlog_log_key_predictionlogloss"),
]
AFTER = [
    ("projects", "0001_initial"),
    ("core", "0002_blob"),
    ("datasets", "0005_blob_to_core"),
    ("training", "0006_blob_in_core"),
    ("serving", "0005_blob_in_core"),
]


@pytest.mark.django_db(transaction=True)
def test_blobs_and_the_items_on_them_survive_the_move():
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    old = executor.loader.project_state(BEFORE).apps
    Blob, Project, Item = (
        old.get_model("datasets", "Blob"),
        old.get_model("projects", "Project"),
        old.get_model("datasets", "Item"),
    )
    blob = Blob.objects.create(sha256="ab" * 32, path="blobs/ab/x.png", size=3, content_type="image/png")
    project = Project.objects.create(slug="moved", name="Moved")
    Item.objects.create(
        project=project, sha256="ab" * 32, blob=blob, width=1, height=1, mode="L", format="PNG", bytes=3
    )

    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(AFTER)
    new = executor.loader.project_state(AFTER).apps
    moved = new.get_model("core", "Blob").objects.get(sha256="ab" * 32)
    assert moved.pk == blob.pk and moved.path == "blobs/ab/x.png"
    assert new.get_model("datasets", "Item").objects.get(project__slug="moved").blob_id == moved.pk

    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())  # the rest of the tests run on the latest schema
