"""The embedded filesystem broker never shows a reader a message file that is still being written."""

import os

from kombu import Connection
from kombu.transport import resolve_transport

from apps.core import broker


def test_the_filesystem_alias_is_the_atomic_transport():
    import mlportal.celery  # noqa: F401  (sets the alias, as every process that imports the app does)

    assert resolve_transport("filesystem") is broker.Transport


def test_a_message_appears_whole_or_not_at_all(tmp_path, monkeypatch):
    folders = {k: str(tmp_path / k) for k in ("queue", "processed", "control")}
    for f in folders.values():
        os.makedirs(f)
    conn = Connection(
        "filesystem://",
        transport=broker.Transport,
        transport_options={
            "data_folder_in": folders["queue"],
            "data_folder_out": folders["queue"],
            "processed_folder": folders["processed"],
            "control_folder": folders["control"],
        },
    )
    channel = conn.channel()
    seen_before_rename = []
    real_replace = os.replace

    def replace(src, dst):
        try:  # what a polling worker finds while the message is being written
            seen_before_rename.append(channel._get("ingest"))
        except Exception as exc:  # noqa: BLE001 - kombu's Empty
            seen_before_rename.append(type(exc).__name__)
        real_replace(src, dst)

    monkeypatch.setattr(broker.os, "replace", replace)
    channel._put("ingest", {"body": "job 7"})
    assert seen_before_rename == ["Empty"]
    assert channel._get("ingest") == {"body": "job 7"}
    assert os.listdir(folders["queue"]) == []
    conn.release()
