"""A labeler labels 20 real screw photos with the keyboard alone, skips one and undoes one."""

import io
import os

import pytest
from PIL import Image

from apps.labeling.models import ItemLabel, LabelChange
from tests.factories import PASSWORD, label_classes, make_item

from .conftest import watch

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


def _small_png(path, size=256):
    with Image.open(path) as im:
        im = im.convert("L").resize((size, size), Image.LANCZOS)
        out = io.BytesIO()
        im.save(out, format="PNG")
        return out.getvalue()


def open_workspace(browser, live_server, project, errors=None):
    """The labeler logs in through the form and opens the workspace."""
    page = watch(browser.new_page(viewport={"width": 1300, "height": 900}))
    if errors is not None:
        page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(live_server.url + "/login/")
    page.fill("input[name=username]", "labeler")
    page.fill("input[name=password]", PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(lambda u: "/login" not in u)
    page.goto(f"{live_server.url}/p/{project.slug}/labeling/work/")
    return page


@pytest.fixture
def labeler_b(project):
    from apps.accounts.models import Role
    from tests.factories import member

    return member(project, Role.LABELER, username="labeler_b")


def test_labeler_labels_twenty_screws_with_the_keyboard(live_server, browser, project, people, screws):
    root, rows = screws
    good = [r for r in rows if r["label"] == "good"][:11]
    defect = [r for r in rows if r["label"] == "defect"][:10]
    picked = [r for pair in zip(good, defect) for r in pair] + good[10:]  # 21, mixed
    truth = {}
    for r in picked:
        name = r["path"].replace("/", "_")
        make_item(project, _small_png(root / r["path"]), name=name)
        truth[name] = r["label"]
    label_classes(project, ("good", "defect"))  # hotkeys 1 and 2
    key = {"good": "1", "defect": "2"}
    wrong = {"good": "2", "defect": "1"}

    errors = []
    page = open_workspace(browser, live_server, project, errors)
    sent = []
    page.on("request", lambda r: sent.append((r.url.split("/labeling/")[-1], r.post_data or "")))

    name_el = page.locator("#lw-name")

    def shown():
        try:
            page.wait_for_function(
                "() => { const t = document.getElementById('lw-name').textContent;"
                " return t && t !== 'Loading…' && t !== '—' }",
                timeout=15000,
            )
        except Exception:  # noqa: BLE001
            raise AssertionError(
                f"no item shown after {seen}: {page.evaluate('window.labeling.state()')}, "
                f"{name_el.text_content()!r}, {page.locator('#lw-msg').text_content()!r}"
            ) from None
        return name_el.text_content()

    labeled, skipped, undone = [], None, None
    seen = []
    while len(labeled) < 20:
        name = shown()
        assert name in truth, name
        assert name not in seen or name == undone
        seen.append(name)
        if len(seen) > 10:  # the first ten as fast as keys go (saves queue up), the rest at a person's pace
            page.wait_for_function("() => document.getElementById('st-saving').dataset.pending === '0'")
        if len(seen) == 5 and skipped is None:
            skipped = name
            page.keyboard.press("s")
        elif len(seen) == 9 and undone is None:
            undone = name
            page.keyboard.press(wrong[truth[name]])  # a slip of the finger…
            page.wait_for_function(f"() => document.getElementById('lw-name').textContent !== {name!r}")
            page.keyboard.press("u")  # …taken back: the same screw comes back
            page.wait_for_function(f"() => document.getElementById('lw-name').textContent === {name!r}")
            page.keyboard.press(key[truth[name]])
            labeled.append(name)
        else:
            page.keyboard.press(key[truth[name]])
            labeled.append(name)
        if len(labeled) < 20:
            page.wait_for_function(f"() => document.getElementById('lw-name').textContent !== {name!r}")
    page.wait_for_function("() => document.getElementById('st-saving').dataset.pending === '0'")
    page.locator("#lw-empty").wait_for(state="visible")  # only the skipped screw is left, hidden from me
    page.wait_for_function("() => document.getElementById('st-today').textContent === '20'")
    page.screenshot(path=str(_artifacts() / "labeling-workspace.png"))
    assert not errors, errors

    stored = {
        lab.item.original_name: lab.label_class.name for lab in ItemLabel.objects.select_related("item", "label_class")
    }
    assert stored == {n: truth[n] for n in labeled}
    assert len(stored) == 20 and skipped not in stored and undone in stored
    history = list(
        LabelChange.objects.filter(item__original_name=undone, scope="final")
        .order_by("id")
        .values_list("old", "new", "source")
    )
    right, slip = truth[undone], {"good": "defect", "defect": "good"}[truth[undone]]
    assert history == [("", slip, "labeler"), (slip, "", "undo"), ("", right, "labeler")]
    assert int(page.locator("#st-rate").text_content()) > 0
    # At a person's pace a save brings the next items in its own answer: the prefetch needs no
    # request of its own then (when saves queue up, a separate queue/next/ goes out at once).
    topped_up = [u for u, body in sent if u.endswith("/label/") and '"next":0' not in body]
    asked = [u for u, _ in sent if u == "queue/next/"]
    print(f"{len(topped_up)} saves brought the next items; {len(asked)} separate queue/next/ requests")
    assert len(topped_up) >= 1 and len(asked) < 10, sent


def _artifacts():
    from pathlib import Path

    p = Path(__file__).resolve().parents[2] / "test-artifacts"
    p.mkdir(exist_ok=True)
    return p


def test_boxes_zoom_pan_prefetch_and_a_conflict_message(live_server, browser, project, people, labeler_b, screws):
    """Defect regions are drawn, moved, resized and deleted with the mouse; zoom and pan move the
    view; the next images are prefetched; a save that lost a race says so in plain words."""
    from apps.labeling import services

    root, rows = screws
    defect = [r for r in rows if r["label"] == "defect"][:3]
    # Full-size 1024×1024 photographs here: zoom and pan are for them.
    its = [make_item(project, (root / r["path"]).read_bytes(), name=f"d{i}.png") for i, r in enumerate(defect)]
    assert (its[0].width, its[0].height) == (1024, 1024)
    good, bad = label_classes(project, ("good", "defect"))
    st = services.labeling_settings_for(project)
    st.regions_enabled = True
    st.save()

    page = open_workspace(browser, live_server, project)
    page.wait_for_function("() => document.getElementById('lw-name').textContent === 'd0.png'")
    # Prefetch: the next items are already here before the first is labeled.
    page.wait_for_function("() => window.labeling.state().queue.length >= 2")

    def to_screen(x, y):
        return page.evaluate(f"""() => {{ const r = document.getElementById('lw-stage').getBoundingClientRect();
            const m = new DOMMatrix(getComputedStyle(document.getElementById('lw-world')).transform);
            return [r.left + m.e + {x} * m.a, r.top + m.f + {y} * m.d]; }}""")

    def drag(a, b):
        page.mouse.move(*a)
        page.mouse.down()
        page.mouse.move((a[0] + b[0]) / 2, (a[1] + b[1]) / 2)
        page.mouse.move(*b)
        page.mouse.up()

    # Draw box 1 from (100,100) to (200,180) in image pixels, then box 2, then delete box 2.
    page.keyboard.press("r")
    drag(to_screen(100, 100), to_screen(200, 180))
    page.keyboard.press("r")
    drag(to_screen(300, 300), to_screen(350, 360))
    assert page.locator("#lw-svg rect.box").count() == 2
    page.keyboard.press("Delete")  # the box just drawn is selected
    assert page.locator("#lw-svg rect.box").count() == 1
    # Move box 1 by (+50, +20), then resize it from its corner handle by (+30, +40).
    page.locator("#lw-svg rect.box").click()
    drag(to_screen(150, 140), to_screen(200, 160))
    drag(to_screen(250, 200), to_screen(280, 240))
    # Zoom in with the keyboard and pan with the mouse: the view moves, the box stays in image pixels.
    before = page.evaluate("() => getComputedStyle(document.getElementById('lw-world')).transform")
    page.keyboard.press("+")
    page.keyboard.press("+")
    drag(to_screen(20, 480), to_screen(60, 470))
    after = page.evaluate("() => getComputedStyle(document.getElementById('lw-world')).transform")
    assert before != after
    assert page.locator("#lw-zoom").text_content() != "100%"

    page.keyboard.press("2")
    page.wait_for_function("() => document.getElementById('st-saving').dataset.pending === '0'")
    [box] = ItemLabel.objects.get(item=its[0]).regions
    assert abs(box["x"] - 150) <= 3 and abs(box["y"] - 120) <= 3
    assert abs(box["w"] - 130) <= 3 and abs(box["h"] - 120) <= 3

    # Someone else labels d1 while it is on screen: our save is refused and we are told why.
    page.wait_for_function("() => document.getElementById('lw-name').textContent === 'd1.png'")
    services.item_label_set(item=its[1], label_class=good, user=labeler_b, source="review")
    page.keyboard.press("2")
    msg = page.locator("#lw-msg")
    msg.wait_for(state="visible")
    assert "labeler_b labeled d1.png as “good”" in msg.text_content()
    assert "not saved" in msg.text_content()
    page.screenshot(path=str(_artifacts() / "labeling-conflict.png"))
    page.wait_for_function("() => document.getElementById('lw-name').textContent === 'd1.png'")  # back for a look
    assert ItemLabel.objects.get(item=its[1]).label_class == good

    # Back: the previous screw (d0, saved as defect) comes back and a class key changes its label.
    page.keyboard.press("b")
    page.wait_for_function("() => document.getElementById('lw-name').textContent === 'd0.png'")
    page.wait_for_function("() => document.getElementById('lw-was').textContent.includes('defect')")
    page.keyboard.press("1")
    page.wait_for_function("() => document.getElementById('lw-name').textContent === 'd1.png'")  # and on again
    page.wait_for_function("() => document.getElementById('st-saving').dataset.pending === '0'")
    assert ItemLabel.objects.get(item=its[0]).label_class == good
    assert list(LabelChange.objects.filter(item=its[0], scope="final").order_by("id").values_list("old", "new")) == [
        ("", "defect"),
        ("defect", "good"),
    ]
