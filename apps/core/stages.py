"""The pipeline's stages as the project page shows them. Each app registers how to tell its
stage's state (in its AppConfig.ready); a stage nobody registered shows as not started."""

from dataclasses import dataclass

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
STATE_LABELS = {"not_started": "Not started", "in_progress": "In progress", "done": "Done", "attention": "Attention"}


@dataclass
class StageState:
    state: str  # not_started | in_progress | done | attention
    summary: str = ""


def register_stage(key, url_name, state_fn):
    """``state_fn(project) -> StageState``; ``url_name`` takes the project slug."""
    _providers[key] = (url_name, state_fn)


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
