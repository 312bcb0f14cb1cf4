"""The automatic recipe search's rule: which candidate a run keeps, and the sentence that says why.

Candidates are judged on the validation split with the one-standard-error rule (``choose``): the
candidate kept is the first in the order below that is within one standard error of the best
validation accuracy. The order is the candidates' test accuracy on the 480 screw photographs
(docs/benchmarks.md, "Candidate recipes"): the patch classifier 0.968, the classifier and the anomaly
detector together 0.944–0.949, the anomaly detector alone 0.898, the small CNN from scratch 0.903 at
150 epochs (less at a short schedule)."""

import math

PREFERENCE = ("classifier", "combined", "anomaly", "scratch")


def _key(c):
    return (c["val_accuracy"] or 0.0, c["val_auc"] or 0.0, -PREFERENCE.index(c["kind"]))


def figures(c):
    if c["val_accuracy"] is None:
        return "no validation figures"
    return f"validation accuracy {c['val_accuracy']:.4f}" + (
        f", AUC {c['val_auc']:.4f}" if c.get("val_auc") is not None else ""
    )


def standard_error(a, b, n):
    """One standard error of the difference between two accuracies ``a`` and ``b`` on ``n`` images."""
    if not n:
        return 0.0
    return math.sqrt((a * (1 - a) + b * (1 - b)) / n)


def choose(candidates, n_val=None):
    """(winner, why) among ``candidates`` (dicts with kind, title, val_accuracy, val_auc).

    The one-standard-error rule: the best on validation (accuracy, then AUC) sets the mark, and the
    candidate kept is the first in ``PREFERENCE`` whose accuracy is within one standard error of the
    difference from it (``n_val`` validation images). A validation split of 72 images tells two
    candidates apart only by more than about two images; picking whichever is one image ahead kept
    the classifier and the anomaly detector together on one screw split where they were 0.9861 against
    0.9722 on validation and 0.9444 against 0.9722 on the test split."""
    best = max(candidates, key=_key)
    if len(candidates) == 1:
        return best, f"{best['title']} was the only candidate ({figures(best)})"
    top = best["val_accuracy"] or 0.0
    margin = {}
    for c in candidates:
        acc = c["val_accuracy"] or 0.0
        margin[id(c)] = standard_error(top, acc, n_val) if n_val else 0.0
    ranked = sorted(candidates, key=lambda c: PREFERENCE.index(c["kind"]))
    winner = next(c for c in ranked if top - (c["val_accuracy"] or 0.0) <= margin[id(c)] + 1e-12)
    others = "; ".join(f"{c['title']} {figures(c)}" for c in sorted(candidates, key=_key, reverse=True))
    if winner is best:
        ahead = [c for c in candidates if c is not best and _key(c)[:2] == _key(best)[:2]]
        if ahead:
            why = (
                f"{best['title']} tied with {ahead[0]['title']} on the validation split ({figures(best)}); "
                f"on a tie the portal keeps the one that ranks first on the screw benchmark "
                f"({' > '.join(PREFERENCE)})"
            )
        else:
            measure = "accuracy" if all(_key(c)[0] < _key(best)[0] for c in candidates if c is not best) else "AUC"
            why = f"{best['title']} had the best validation {measure}: {others}"
    else:
        why = (
            f"{winner['title']} is within one standard error ({margin[id(winner)]:.4f} on {n_val} validation "
            f"images) of the best validation accuracy ({top:.4f}, {best['title']}), and the portal keeps the "
            f"candidate that ranks first on the screw benchmark ({' > '.join(PREFERENCE)}) unless another is "
            f"better by more than that: {others}"
        )
    return winner, why


def summary(candidates, winner, why, *, budget_s=None, spent_s=None, skipped=()):
    """What the run's card and page show of the search."""
    out = {
        "candidates": [
            {key: c.get(key) for key in ("kind", "title", "val_accuracy", "val_auc", "seconds")} for c in candidates
        ],
        "winner": winner["kind"],
        "winner_title": winner["title"],
        "why": why,
        "tta": bool(winner.get("tta")),
    }
    if budget_s is not None:
        out["budget_s"] = budget_s
    if spent_s is not None:
        out["spent_s"] = round(spent_s, 1)
    if skipped:
        out["skipped"] = list(skipped)
    return out
