import io
import re

from apps.core.stages import project_stages
from apps.labeling import services
from apps.labeling.models import ItemLabel, LabelClass, LabelingSettings
from tests.factories import field_errors


def test_workspace_shows_classes_hotkeys_and_the_cheat_sheet(client, project, people, classes):
    client.force_login(people["labeler"])
    html = client.get(f"/p/{project.slug}/labeling/work/").content.decode()
    assert "--c:#1a7f4b" in html and ">good" in html and "lw-keys" in html
    assert "skip" in html and "undo" in html and "lw-config" in html


def test_schema_form_saves_and_rejects_reserved_or_duplicate_hotkeys(client, project, people, classes):
    client.force_login(people["pm"])
    good, defect = classes
    base = {
        "id": [good.pk, defect.pk, ""],
        "name": ["good", "defect", "scratch"],
        "color": ["#1a7f4b", "#b42318", "#6b3fa0"],
        "hotkey": ["1", "2", "3"],
        "order": ["0", "1", "2"],
        "overlap": "2",
        "overlap_pct": "10",
        "lease_minutes": "5",
        "regions_enabled": "on",
    }
    r = client.post(f"/p/{project.slug}/labeling/schema/", base)
    assert r.status_code == 302
    assert list(LabelClass.objects.filter(project=project).values_list("name", "hotkey")) == [
        ("good", "1"),
        ("defect", "2"),
        ("scratch", "3"),
    ]
    st = LabelingSettings.objects.get(project=project)
    assert (st.overlap, st.overlap_share, st.lease_seconds, st.regions_enabled) == (2, 0.1, 300, True)
    bad = dict(base, id=[good.pk, defect.pk, ""], hotkey=["s", "2", "2"], name=["good", "defect", "dent"])
    r = client.post(f"/p/{project.slug}/labeling/schema/", bad)
    assert r.status_code == 400
    text = r.content.decode()
    assert "kept for skip" in text and "already used by defect" in text
    assert not LabelClass.objects.filter(name="dent").exists()
    assert 'value="dent"' in text  # the rows sent come back to be mended
    # The queue's settings: each error beside its field, in the page's units, what was typed kept.
    r = client.post(f"/p/{project.slug}/labeling/schema/", dict(base, overlap_pct="lots", lease_minutes="0.1"))
    text = r.content.decode()
    assert r.status_code == 400 and field_errors(text, "overlap_pct") == [
        "The sample share must be a percentage, e.g. 10."
    ]
    assert field_errors(text, "lease_minutes") == ["Ensure this value is greater than or equal to 0.5."]
    assert 'value="lots"' in text and LabelingSettings.objects.get(project=project).lease_seconds == 300


def test_a_class_in_use_cannot_be_removed(project, people, classes, items):
    import pytest
    from django.core.exceptions import ValidationError

    [it] = items(1)
    services.annotation_submit(item=it, user=people["labeler"], label_class=classes[1])
    with pytest.raises(ValidationError) as exc:
        services.label_schema_update(
            project=project,
            user=people["pm"],
            classes=[{"id": classes[0].pk, "name": "good", "color": "#1a7f4b", "hotkey": "1"}],
        )
    assert "defect" in str(exc.value) and "rename" in str(exc.value)


def test_grid_applies_a_class_to_many_selected_thumbnails(client, project, people, classes, items):
    its = items(4)
    client.force_login(people["labeler"])
    page = client.get(f"/p/{project.slug}/labeling/grid/").content.decode()
    assert page.count('name="items"') == 4
    r = client.post(
        f"/p/{project.slug}/labeling/grid/", {"items": [its[0].pk, its[2].pk], "label_class": classes[1].pk}
    )
    assert r.status_code == 302
    assert set(ItemLabel.objects.filter(label_class=classes[1]).values_list("item_id", flat=True)) == {
        its[0].pk,
        its[2].pk,
    }
    assert client.get(f"/p/{project.slug}/labeling/grid/").content.decode().count('name="items"') == 2
    # The page's filter goes back into the address encoded (a value cannot add parameters of its own).
    r = client.post(
        f"/p/{project.slug}/labeling/grid/",
        {"items": [its[1].pk], "label_class": classes[1].pk, "show": "all&page=9"},
    )
    assert r.status_code == 302 and r["Location"].endswith("/labeling/grid/?show=all%26page%3D9")
    r = client.post(f"/p/{project.slug}/labeling/grid/", {"items": ["x"], "label_class": classes[1].pk})
    assert r.status_code == 400 and "Not an item id: x." in r.content.decode()


def test_review_page_resolves_a_disagreement_with_a_comment(client, project, people, labeler2, classes, items, overlap):
    overlap(2, 1.0)
    [it] = items(1)
    services.annotation_submit(item=it, user=people["labeler"], label_class=classes[0])
    services.annotation_submit(item=it, user=labeler2, label_class=classes[1])
    client.force_login(people["reviewer"])
    page = client.get(f"/p/{project.slug}/labeling/review/").content.decode()
    assert "Disagreements (1)" in page and "labeler2" in page
    resolve = f"/p/{project.slug}/labeling/review/items/{it.pk}/resolve/"
    assert f'action="{resolve}"' in page
    r = client.post(resolve, {"label_class": classes[1].pk, "comment": ""})  # refused: the why is required
    beside = field_errors(r.content.decode().split(f'action="{resolve}"')[1], "comment")
    assert r.status_code == 400 and beside == ["Say why in a comment: the labelers will read it."]
    assert not ItemLabel.objects.filter(item=it, label_class=classes[1]).exists()
    assert client.get(resolve).status_code == 405
    client.post(resolve, {"label_class": classes[1].pk, "comment": "thread damage"})
    assert ItemLabel.objects.get(item=it).label_class == classes[1]
    assert "Disagreements (0)" in client.get(f"/p/{project.slug}/labeling/review/").content.decode()


def test_overview_shows_progress_and_agreement_to_every_member(
    client, project, people, labeler2, classes, items, overlap
):
    overlap(2, 1.0)
    its = items(4)
    for i, it in enumerate(its):
        services.annotation_submit(item=it, user=people["labeler"], label_class=classes[0])
        services.annotation_submit(item=it, user=labeler2, label_class=classes[i == 3])
    client.force_login(people["manager"])
    html = client.get(f"/p/{project.slug}/labeling/").content.decode()
    assert "Cohen&#x27;s kappa" in html or "Cohen's kappa" in html
    assert "labeler × labeler2" in html and 'id="kappa-overall"' in html
    assert "3 of 4 labeled" in html
    from rest_framework.test import APIClient

    c = APIClient()
    c.force_authenticate(people["manager"])
    data = c.get(f"/api/v1/projects/{project.slug}/labeling/agreement/").json()
    assert data["method"] == "Cohen's kappa" and data["items"] == 4
    assert set(data["per_class"]) == {"good", "defect"}
    assert [(p["a"], p["b"], p["items"]) for p in data["pairs"]] == [("labeler", "labeler2", 4)]


def test_stage_is_registered_with_a_count(project, people, classes, items):
    its = items(3)
    services.annotation_submit(item=its[0], user=people["labeler"], label_class=classes[0])
    stage = next(s for s in project_stages(project) if s["key"] == "labeling")
    assert stage["summary"] == "1 of 3 labeled" and stage["state"] == "in_progress"
    assert stage["url"] == f"/p/{project.slug}/labeling/"


def test_import_page_lists_each_rows_result(client, project, people, classes, items):
    items(1)
    client.force_login(people["ds"])
    f = io.BytesIO(b"file_name,class\nimg000.png,good\nnope.png,good\n")
    f.name = "l.csv"
    html = client.post(f"/p/{project.slug}/labeling/import/", {"kind": "csv", "file": f}).content.decode()
    assert "<b>1</b> applied" in html and "no item named nope.png" in html


def test_new_class_rows_propose_a_colour_no_class_uses(client, project, people, classes):
    client.force_login(people["pm"])
    html = client.get(f"/p/{project.slug}/labeling/schema/").content.decode()
    used = {c.color.lower() for c in classes}
    proposed = re.findall(r'<input type="color" name="color" value="(#[0-9a-f]{6})"', html)[len(classes) :]
    assert len(proposed) == 2 and not used & set(proposed) and proposed[0] != proposed[1]


def test_a_labelers_own_page_and_the_reviewers_rates(client, project, people, labeler2, classes, items, overlap):
    from django.contrib.auth import get_user_model

    overlap(2, 1.0)
    its = items(3)
    for it in its:
        services.annotation_submit(item=it, user=people["labeler"], label_class=classes[0])
        services.annotation_submit(item=it, user=labeler2, label_class=classes[0])
    from apps.labeling.models import Annotation

    a, b = Annotation.objects.filter(user=people["labeler"]).order_by("id")[:2]
    services.annotation_review(annotation=a, reviewer=people["reviewer"], accept=False, comment="thread damage missed")
    services.annotation_review(annotation=b, reviewer=people["reviewer"], accept=True, comment="")
    client.force_login(people["labeler"])
    html = client.get(f"/p/{project.slug}/labeling/labelers/me/").content.decode()
    assert "My work" in html and "thread damage missed" in html and "labeler2" in html
    assert 'id="k-review">1 · 1' in html
    # Another labeler's page: theirs, the PM's, reviewers' and managers' only.
    url = f"/p/{project.slug}/labeling/labelers/labeler/"
    assert client.force_login(labeler2) or client.get(url).status_code == 403
    for who in ("pm", "reviewer", "manager"):
        client.force_login(people[who])
        assert client.get(url).status_code == 200
    client.force_login(people["outsider"])
    assert client.get(url).status_code == 404
    client.force_login(people["pm"])
    assert client.get(f"/p/{project.slug}/labeling/labelers/nobody/").status_code == 404
    # The reviewer sees accept/reject rates per labeler.
    client.force_login(people["reviewer"])
    review = client.get(f"/p/{project.slug}/labeling/review/").content.decode()
    rates = review.split('id="labeler-rates"')[1].split("</table>")[0]
    assert "labeler</a></td><td>1</td><td>1</td>" in rates and "50 %" in rates
    assert get_user_model().objects.filter(username="labeler").exists()
