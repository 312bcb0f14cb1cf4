"""Control and bidirectional characters are removed from every name that comes in."""

import pytest

from apps.core.text import clean_name

RLO, LRI, PDI, ZWSP, BOM = "\u202e", "\u2066", "\u2069", "\u200b", "\ufeff"

pytestmark = pytest.mark.django_db


def test_clean_name_drops_controls_and_keeps_words():
    assert clean_name(f"invoice{RLO}gpj.exe") == "invoicegpj.exe"
    assert clean_name(f" {LRI}screw{PDI}\u00a0good{ZWSP}{BOM}\n") == "screw good"
    assert clean_name("a\tb\nc\x00d\x07e") == "a b cde"
    assert clean_name("défaut – vis 螺丝") == "défaut – vis 螺丝"
    assert clean_name(None) == ""


def test_every_incoming_name_is_cleaned(project, people, api):
    from django.urls import reverse

    from apps.accounts.services import api_token_create
    from apps.datasets.models import Upload
    from apps.labeling.services import label_class_get_or_create
    from apps.projects.services import project_create

    client = api(people["ds"])
    r = client.post(
        reverse("api-uploads", args=[project.slug]),
        {"filename": f"photos/good/evil{RLO}gnp.exe", "size": 10},
        format="json",
    )
    assert r.status_code == 201, r.data
    assert Upload.objects.get().filename == "photos/good/evilgnp.exe"
    assert project_create(creator=people["pm"], name=f"Screws{RLO} 2").name == "Screws 2"
    assert label_class_get_or_create(project=project, name=f"{LRI}scratch{PDI}").name == "scratch"
    token, _ = api_token_create(user=people["pm"], name=f"ci{RLO}")
    assert token.name == "ci"
