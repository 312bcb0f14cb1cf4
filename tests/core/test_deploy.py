"""The production profile and the container stack, checked without Docker."""

import os
import shlex
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def manage(*args, **env):
    full = {
        k: v
        for k, v in os.environ.items()
        if k not in ("SECRET_KEY", "PORTAL_ENV", "DEBUG", "DJANGO_ALLOW_ASYNC_UNSAFE")
    }
    full.update(env)
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=full, capture_output=True, text=True, timeout=120
    )


def test_production_refuses_to_start_without_a_secret_key():
    r = manage("check", PORTAL_ENV="production")
    assert r.returncode != 0 and "SECRET_KEY must be set" in r.stderr


def test_production_settings_pass_check_deploy():
    import secrets

    r = manage(
        "check",
        "--deploy",
        PORTAL_ENV="production",
        SECRET_KEY=secrets.token_urlsafe(60),
        ALLOWED_HOSTS="portal.example.com",
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "security." not in r.stdout + r.stderr, r.stdout + r.stderr


def test_compose_starts_the_whole_stack_and_its_commands_exist():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"postgres", "redis", "web", "worker", "beat", "serving"} <= set(services)
    for name, svc in services.items():
        assert "healthcheck" in svc, f"{name} has no health check"
    for name in ("postgres", "redis"):
        assert services[name]["volumes"], f"{name} keeps no data"
    for name in ("web", "worker", "beat", "serving"):
        svc = services[name]
        assert svc["build"]["context"] == "." and (ROOT / "Dockerfile").exists()
        assert "SECRET_KEY" in svc["environment"] and svc["environment"]["PORTAL_ENV"] == "production"
        assert any(v.endswith(":/data") for v in svc["volumes"])
        words = " ".join(svc["command"]) if isinstance(svc["command"], list) else svc["command"]
        _check_command_points_at_project(words)
        _check_command_points_at_project(" ".join(svc["healthcheck"]["test"][1:]))
    assert "migrate" in " ".join(services["web"]["command"])


def _check_command_points_at_project(words):
    from django.core.management import get_commands

    tokens = shlex.split(words.replace("&&", " ; "))
    for i, tok in enumerate(tokens):
        if ":application" in tok:  # gunicorn module:callable
            module, attr = tok.split(":")
            assert (ROOT / (module.replace(".", "/") + ".py")).exists(), tok
            assert f"{attr} =" in (ROOT / (module.replace(".", "/") + ".py")).read_text()
        if tok == "-A":
            assert (ROOT / tokens[i + 1] / "celery.py").exists(), tokens[i + 1]
        if tok == "manage.py":
            assert tokens[i + 1] in get_commands(), f"manage.py {tokens[i + 1]} does not exist"
        if tok == "-Q":
            from mlportal.celery import app

            known = {q.name for q in app.conf.task_queues}
            assert set(tokens[i + 1].split(",")) <= known, tokens[i + 1]
    assert "pip install -r requirements.txt" in (ROOT / "Dockerfile").read_text()


def test_a_gpu_worker_listens_on_the_gpu_queue_with_an_nvidia_device_and_a_cuda_image():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    svc = compose["services"]["worker-gpu"]
    assert svc["build"]["context"] == "." and svc["build"]["args"]["ACCELERATOR"] == "gpu"
    assert svc["profiles"] == ["gpu"]  # a host without a GPU starts the stack without it
    command = svc["command"]
    assert command[command.index("-Q") + 1] == "gpu"
    _check_command_points_at_project(" ".join(command))
    devices = svc["deploy"]["resources"]["reservations"]["devices"]
    assert devices == [{"driver": "nvidia", "count": 1, "capabilities": ["gpu"]}]
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "ARG ACCELERATOR=cpu" in dockerfile and "requirements-gpu.txt" in dockerfile
    gpu = (ROOT / "requirements-gpu.txt").read_text()
    cpu_pin = next(
        line for line in (ROOT / "requirements.txt").read_text().splitlines() if line.startswith("tensorflow-cpu==")
    )
    assert f"tensorflow[and-cuda]=={cpu_pin.split('==')[1]}" in gpu  # the same release, with CUDA


def test_images_record_the_code_version_from_a_build_argument(monkeypatch):
    """The image has no .git (.dockerignore) and no git: runs and model cards made in the production
    stack take the code version from PORTAL_CODE_VERSION, a build argument baked into the image."""
    lines = [ln.strip() for ln in (ROOT / "Dockerfile").read_text().splitlines()]
    arg = lines.index("ARG PORTAL_CODE_VERSION=unknown")
    assert lines.index("ENV PORTAL_CODE_VERSION=$PORTAL_CODE_VERSION") > arg
    assert ".git" in (ROOT / ".dockerignore").read_text().split()
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    built = {name: svc["build"] for name, svc in compose["services"].items() if "build" in svc}
    assert {"web", "worker", "serving", "worker-gpu"} <= set(built)
    for name, build in built.items():
        assert build["args"]["PORTAL_CODE_VERSION"] == "${PORTAL_CODE_VERSION:-unknown}", name
    assert "PORTAL_CODE_VERSION=$$(git rev-parse HEAD) docker compose build" in (ROOT / "Makefile").read_text()
    from apps.training.services import code_version

    monkeypatch.setenv("PORTAL_CODE_VERSION", "0123abcd")
    assert code_version() == "0123abcd"
