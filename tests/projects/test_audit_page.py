"""The audit page renders every action the code writes, whatever its data holds.

The actions are read from the source (every ``audit_record(... action=...)``), so an action added
later is rendered here without anyone remembering to add it to a list."""

import ast
from pathlib import Path

import pytest

from apps.core.audit import audit_record

pytestmark = pytest.mark.django_db

APPS = Path(__file__).resolve().parents[2] / "apps"


def written_actions():
    """Every action string passed to ``audit_record`` in apps/ (an f-string's holes become ``x``)."""
    found = set()
    for path in APPS.rglob("*.py"):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if not (
                isinstance(node, ast.Call)
                and getattr(node.func, "id", getattr(node.func, "attr", "")) == "audit_record"
            ):
                continue
            for kw in node.keywords:
                if kw.arg != "action":
                    continue
                if isinstance(kw.value, ast.Constant):
                    found.add(kw.value.value)
                elif isinstance(kw.value, ast.JoinedStr):
                    found.add("".join(v.value if isinstance(v, ast.Constant) else "x" for v in kw.value.values))
                elif isinstance(kw.value, ast.Name):  # a variable: the strings it may hold are in the same module
                    found.add(f"<variable {kw.value.id} in {path.name}>")
    return found


def test_the_source_writes_the_actions_that_broke_the_page():
    actions = written_actions()
    assert {"dataset_version.created", "training_run.review_requested", "promotion_request.create"} <= actions


def test_audit_page_renders_one_entry_of_every_action(client, people, project):
    actions = sorted(written_actions())
    # Data shaped like what the services write, with keys that shadow dict methods in templates.
    data = {
        "items": [11, 12, 13],
        "number": 1,
        "values": {"a": 1},
        "keys": "k",
        "get": None,
        "failures": ["accuracy 0.6 below 0.95"] * 12,
    }
    for action in actions:
        audit_record(actor=people["pm"], project=project, action=action, obj=project, reason=f"why {action}", data=data)
    audit_record(actor=None, project=project, action="system.odd", data=["not", "a", "dict"])
    client.force_login(people["labeler"])
    r = client.get(f"/p/{project.slug}/audit/")
    assert r.status_code == 200
    bodies = [r.content.decode()]
    for page in range(2, len(actions) // 50 + 2):
        r = client.get(f"/p/{project.slug}/audit/?page={page}")
        assert r.status_code == 200
        bodies.append(r.content.decode())
    body = "".join(bodies)
    for action in actions:
        assert f"<code>{action.replace('<', '&lt;').replace('>', '&gt;')}</code>" in body
    assert "items: [11, 12, 13]" in body and "failures: [" in body and "(12 in all)" in body
    assert "data: [" in body  # an event whose data is not a dict
    for action in ("dataset_version.created", "training_run.review_requested"):
        r = client.get(f"/p/{project.slug}/audit/", {"action": action})
        assert r.status_code == 200 and "items: [11, 12, 13]" in r.content.decode()
