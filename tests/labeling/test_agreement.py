import pytest

from apps.labeling.agreement import agreement_summary, cohen_kappa, fleiss_kappa, kappa_words


def test_fleiss_kappa_matches_the_published_example():
    # Fleiss (1971) as worked on Wikipedia: 10 subjects, 14 raters, 5 categories → 0.210.
    table = [
        [0, 0, 0, 0, 14],
        [0, 2, 6, 4, 2],
        [0, 0, 3, 5, 6],
        [0, 3, 9, 2, 0],
        [2, 2, 8, 1, 1],
        [7, 7, 0, 0, 0],
        [3, 2, 6, 3, 0],
        [2, 5, 3, 2, 2],
        [6, 5, 2, 1, 0],
        [0, 2, 2, 3, 7],
    ]
    kappa, per = fleiss_kappa(table)
    assert kappa == pytest.approx(0.2099, abs=1e-3)
    assert set(per) == {0, 1, 2, 3, 4}
    # Category 5 by hand: p=32/140, sum n(n-n)=158, 1 - 158/(10*14*13*p*(1-p)) = 0.5077.
    assert per[4] == pytest.approx(0.5077, abs=1e-3)


def test_cohen_kappa_matches_the_published_example():
    # 50 proposals: both yes 20, A yes/B no 5, A no/B yes 10, both no 15 → po .7, pe .5, kappa .4.
    a = ["y"] * 20 + ["y"] * 5 + ["n"] * 10 + ["n"] * 15
    b = ["y"] * 20 + ["n"] * 5 + ["y"] * 10 + ["n"] * 15
    assert cohen_kappa(a, b) == pytest.approx(0.4)
    assert cohen_kappa(a, a) == 1.0
    assert cohen_kappa([], []) is None


def test_summary_uses_cohen_for_two_labelers_and_fleiss_for_more():
    two = {
        1: {"ann": "good", "bob": "good"},
        2: {"ann": "defect", "bob": "defect"},
        3: {"ann": "good", "bob": "defect"},
        4: {"ann": "good", "bob": "good"},
    }
    s = agreement_summary(two, ["good", "defect"])
    assert s["method"] == "Cohen's kappa" and s["items"] == 4
    assert s["overall"] == pytest.approx(
        cohen_kappa(["good", "defect", "good", "good"], ["good", "defect", "defect", "good"])
    )
    assert set(s["per_class"]) == {"good", "defect"}
    assert [(p["a"], p["b"], p["items"]) for p in s["pairs"]] == [("ann", "bob", 4)]

    three = {
        i: {"ann": c[0], "bob": c[1], "cy": c[2]}
        for i, c in enumerate([("good",) * 3, ("defect",) * 3, ("good", "good", "defect"), ("good",) * 3])
    }
    s = agreement_summary(three, ["good", "defect"])
    assert s["method"].startswith("Fleiss")
    table = [[3, 0], [0, 3], [2, 1], [3, 0]]
    assert s["overall"] == pytest.approx(fleiss_kappa(table)[0])
    assert len(s["pairs"]) == 3
    assert kappa_words(0.9) == "almost perfect" and kappa_words(0.1) == "slight"
