"""Profiling reads, scoped to a project the caller is a member of (views resolve the project first)."""

from django.db.models import Min
from django.http import Http404

from apps.core.jobs import JobStatus
from apps.core.stages import StageSpan, StageState
from apps.datasets.models import DatasetVersion, Item, VersionStatus

from . import services
from .models import ProfileRun


def runs_of(project):
    return ProfileRun.objects.filter(project=project).select_related("version", "created_by")


def run_of(project, run_id):
    run = runs_of(project).filter(pk=run_id).first()
    if run is None:
        raise Http404("No such profile in this project.")
    return run


def version_of(project, number):
    v = DatasetVersion.objects.filter(project=project, number=number).first()
    if v is None:
        raise Http404("No such dataset version in this project.")
    return v


def item_of(project, item_id):
    item = Item.objects.filter(project=project, pk=item_id).select_related("blob", "thumbnail").first()
    if item is None:
        raise Http404("No such item in this project.")
    return item


def versions_with_runs(project):
    """[(version, latest run or None)] newest version first."""
    versions = list(DatasetVersion.objects.filter(project=project).order_by("-number"))
    latest = {}
    for run in ProfileRun.objects.filter(project=project).order_by("created_at", "id"):
        latest[run.version_id] = run
    return [(v, latest.get(v.pk)) for v in versions]


def assertion_history(project, limit=12):
    """The latest succeeded run of each version (oldest first) with its results, and per check title
    the cells in that order, marking where a result changed from the version before."""

    runs = {}
    for run in (
        ProfileRun.objects.filter(project=project, status=JobStatus.SUCCEEDED)
        .select_related("version")
        .order_by("finished_at", "id")
    ):
        runs[run.version_id] = run
    runs = sorted(runs.values(), key=lambda r: r.version.number)[-limit:]
    rows, order = {}, []
    for col, run in enumerate(runs):
        for res in run.results.all():
            key = (res.check_name, res.title, res.severity)
            if key not in rows:
                rows[key] = [None] * len(runs)
                order.append(key)
            rows[key][col] = res
    table = []
    for key in order:
        cells, prev = [], None
        for res in rows[key]:
            changed = (
                prev is not None and res is not None and (res.passed != prev.passed or res.measured != prev.measured)
            )
            cells.append({"result": res, "changed": changed, "flipped": changed and res.passed != prev.passed})
            prev = res if res is not None else prev
        table.append({"check": key[0], "title": key[1], "severity": key[2], "cells": cells})
    return runs, table


def stage_span(project):
    """Profiling began with the first profile run and was done when one succeeded."""
    runs = ProfileRun.objects.filter(project=project)
    started = runs.aggregate(t=Min("created_at"))["t"]
    return StageSpan(started, runs.filter(status=JobStatus.SUCCEEDED).aggregate(t=Min("finished_at"))["t"])


def stage_state(project):

    version = DatasetVersion.objects.filter(project=project, status=VersionStatus.READY).order_by("-number").first()
    if version is None:
        return StageState("not_started", "No ready dataset version")
    run = ProfileRun.objects.filter(version=version).first()
    if run is None:
        return StageState("not_started", f"v{version.number} not profiled")
    if run.is_active:
        return StageState("in_progress", f"Profiling v{version.number}: {run.processed}/{run.total}")
    gate = services.gate_check(version)
    if gate.passed:
        return StageState("done", f"v{version.number} passes the gate" + (" (override)" if gate.override else ""))
    return StageState("attention", f"v{version.number}: {len(gate.failures)} blocking check(s) fail")
