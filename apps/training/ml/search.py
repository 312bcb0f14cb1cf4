"""The automatic recipe search's rule: which candidate a run keeps, and the sentence that says why.

Candidates are judged on the validation split: accuracy first, ROC AUC next. Where both tie (a
small validation split ties often) the order below decides; it is the order of the candidates' test
accuracy on the 480 screw photographs (docs/benchmarks.md, "Candidate recipes"): the patch classifier
0.968, the classifier and the anomaly detector together 0.944–0.949, the anomaly detector alone 0.898,
the small CNN from scratch 0.903 at 150 epochs (less at a short schedule)."""

PREFERENCE = ("classifier", "combined", "anomaly", "scratch")


def _key(c):
    return (c["val_accuracy"] or 0.0, c["val_auc"] or 0.0, -PREFERENCE.index(c["kind"]))


def figures(c):
    if c["val_accuracy"] is None:
        return "no validation figures"
    return f"validation accuracy {c['val_accuracy']:.4f}" + (
        f", AUC {c['val_auc']:.4f}" if c.get("val_auc") is not None else ""
    )


def choose(candidates):
    """(winner, why) among ``candidates`` (dicts with kind, title, val_accuracy, val_auc)."""
    ranked = sorted(candidates, key=_key, reverse=True)
    winner = ranked[0]
    if len(ranked) == 1:
        return winner, f"{winner['title']} was the only candidate ({figures(winner)})"
    runner = ranked[1]
    if _key(winner)[:2] == _key(runner)[:2]:
        why = (
            f"{winner['title']} tied with {runner['title']} on the validation split ({figures(winner)}); "
            f"on a tie the portal keeps the one that ranks first on the screw benchmark "
            f"({' > '.join(PREFERENCE)})"
        )
    else:
        measure = "accuracy" if _key(winner)[0] != _key(runner)[0] else "AUC (accuracy tied)"
        why = f"{winner['title']} had the best validation {measure}: " + "; ".join(
            f"{c['title']} {figures(c)}" for c in ranked
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
