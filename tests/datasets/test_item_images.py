"""The one image and thumbnail views every page uses (data grid, labeling, profile, evaluation)."""

import io

import numpy as np
import pytest
from PIL import Image

from apps.core.storage import blob_put, blob_read
from tests.factories import ProjectFactory, make_item, png_bytes

pytestmark = pytest.mark.django_db


def test_image_view_serves_the_pixels_for_members_only(client, project, people):
    item = make_item(project, png_bytes(size=(40, 30), seed=3))
    client.force_login(people["labeler"])
    r = client.get(f"/p/{project.slug}/data/items/{item.pk}/image")
    assert r.status_code == 200 and r["Content-Type"] == "image/png"
    served = np.asarray(Image.open(io.BytesIO(r.content)))
    assert (served == np.asarray(Image.open(io.BytesIO(blob_read(item.blob))))).all()
    client.force_login(people["outsider"])
    assert client.get(f"/p/{project.slug}/data/items/{item.pk}/image").status_code == 404
    elsewhere = make_item(ProjectFactory())
    client.force_login(people["labeler"])
    assert client.get(f"/p/{project.slug}/data/items/{elsewhere.pk}/thumb").status_code == 404


def test_thumb_view_uses_the_stored_thumbnail_or_makes_a_small_one(client, project, people):
    big = make_item(project, png_bytes(size=(400, 300), seed=5), name="big.png")
    client.force_login(people["labeler"])
    r = client.get(f"/p/{project.slug}/data/items/{big.pk}/thumb")
    assert r["Content-Type"] == "image/jpeg" and max(Image.open(io.BytesIO(r.content)).size) == 192
    big.thumbnail = blob_put(png_bytes(size=(8, 8), seed=6), ext="png", content_type="image/png")
    big.save()
    r = client.get(f"/p/{project.slug}/data/items/{big.pk}/thumb")
    assert Image.open(io.BytesIO(r.content)).size == (8, 8)


def test_an_undecodable_item_has_no_thumbnail(client, project, people):
    item = make_item(project, png_bytes(seed=9))
    broken = blob_put(b"\x89PNG\r\n\x1a\n broken", ext="png")
    item.blob = broken
    item.save()
    client.force_login(people["ds"])
    assert client.get(f"/p/{project.slug}/data/items/{item.pk}/thumb").status_code == 422
