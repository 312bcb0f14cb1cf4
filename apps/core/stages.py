"""The pipeline's stages as the project page shows them. Each app registers how to tell its
stage's state (in its AppConfig.ready); a stage nobody registered shows as not started.

The plan (apps.projects.plan) reads two more things the stages register: when their stage actually
started and finished (``span_fn``), and forecasts of the resources it will use from the project's own
measured rates (``register_forecast``). core names no stage: each app says these of itself."""

import datetime as dt
from dataclasses import dataclass, field

from django.urls import NoReverseMatch, reverse

STAGES = [
    ("scope", "Scope"),
    ("data", "Data"),
    ("labeling", "Labeling"),
    ("profile", "Profile"),
    ("training", "Training"),
    ("registry", "Registry"),
    ("serving", "Serving"),
    ("monitoring", "Monitoring"),
]
_providers = {}
_spans = {}
_forecasters = {}
STATE_LABELS = {"not_started": "Not started", "in_progress": "In progress", "done": "Done", "attention": "Attention"}


@dataclass
class StageState:
    state: str  # not_started | in_progress | done | attention
    summary: str = ""


@dataclass
class StageSpan:
    """When a stage's work actually began and when it was done (None: not yet)."""

    started: dt.datetime | None = None
    finished: dt.datetime | None = None


@dataclass
class Forecast:
    """One resource's forecast from measured rates: ``value`` in ``unit`` for the whole project (None
    when nothing was measured yet), the ``basis`` in words, and, where the pace says so, when the
    ``stage`` is expected to finish."""

    resource: str  # labeling_hours | compute_hours | storage_gb
    value: float | None
    basis: str
    unit: str = ""
    stage: str = ""
    finish: dt.date | None = None
    rates: dict = field(default_factory=dict)


def register_stage(key, url_name, state_fn, span_fn=None):
    """``state_fn(project) -> StageState``; ``url_name`` takes the project slug; ``span_fn(project) ->
    StageSpan`` says when the stage's work actually started and finished (for the plan)."""
    _providers[key] = (url_name, state_fn)
    if span_fn is not None:
        _spans[key] = span_fn


def register_forecast(resource, fn):
    """``fn(project, plan, now) -> Forecast`` for ``resource`` (one app per resource)."""
    _forecasters[resource] = fn


def stage_spans(project):
    """{stage key: StageSpan} for every stage (an unregistered one: never started)."""
    return {key: (_spans[key](project) if key in _spans else StageSpan()) for key, _ in STAGES}


def project_forecasts(project, plan, now, only=None):
    """{resource: Forecast} from every app that registered one (or the resources in ``only``)."""
    return {name: fn(project, plan, now) for name, fn in sorted(_forecasters.items()) if only is None or name in only}


def project_stages(project):
    out = []
    for key, title in STAGES:
        url_name, fn = _providers.get(key, (None, None))
        state = fn(project) if fn else StageState("not_started", "Not available yet")
        try:
            url = reverse(url_name, args=[project.slug]) if url_name else None
        except NoReverseMatch:
            url = None
        out.append(
            {
                "key": key,
                "title": title,
                "state": state.state,
                "label": STATE_LABELS.get(state.state, state.state),
                "summary": state.summary,
                "url": url,
            }
        )
    return out
