"""A registered version's model card as Markdown, in the usual sections: model details, intended
and out-of-scope use, training and evaluation data, metrics with 95 % confidence intervals,
per-class results, exports with their parity, caveats. Composed from what the portal stores (the
version, its run, its dataset version, the project's approved scope, its exports), so it is current
whenever it is read: on the version page (as Markdown text, escaped) and as MODEL_CARD.md in the bundle."""

import math

from .exports import KINDS, TITLES

Z95 = 1.959964


def wilson(successes, n):
    """The 95 % Wilson score interval of a proportion (sound at 0 and 1 and for small n)."""
    if not n:
        return None
    p = successes / n
    denom = 1 + Z95**2 / n
    centre = (p + Z95**2 / (2 * n)) / denom
    half = Z95 * math.sqrt(p * (1 - p) / n + Z95**2 / (4 * n * n)) / denom
    return max(0.0, round(centre - half, 12)), min(1.0, round(centre + half, 12))


def _ci(p, n):
    if p is None or not n:
        return "—"
    lo, hi = wilson(round(p * n), n)
    return f"{p:.4f} (95 % CI {lo:.3f}–{hi:.3f}, n = {n})"


def _cell(text):
    return str(text).replace("|", "\\|").replace("\n", " ")


def card_markdown(version, exports=None):
    """The card of ``version``; ``exports``: its ExportRun rows when the caller has them already."""

    model, run, dv = version.registered_model, version.run, version.dataset_version
    project = model.project
    scope = project.approved_targets or []
    config = run.config or {}
    m = version.metrics or {}
    n = m.get("n") or 0
    out = [f"# Model card: {model.name} v{version.number}", ""]
    out += [
        "## Model details",
        "",
        f"- Project: {project.name} (`{project.slug}`); registered model `{model.name}`, version {version.number}, "
        f"stage {version.stage or 'none'}",
        f"- Recipe: `{config.get('architecture', '?')}`"
        + (
            f" on the `{config['backbone']}` backbone"
            if str(config.get("architecture", "")).startswith("patch_")
            else ""
        )
        + f"; input {version.input_spec.get('image_size')} px square, {version.input_spec.get('channels')} channel(s)",
        f"- Classes (output order): {', '.join(version.classes)}",
        f"- Trained by run #{run.pk}, code version `{run.code_version or 'unknown'}`, TensorFlow {run.tf_version or '?'}",
        f"- Model file: `model.keras`, sha256 `{(version.artifacts.get('keras') or {}).get('sha256', '')}`",
        "",
    ]
    if (run.model_card or {}).get("decision_threshold") is not None:
        out += [
            f"- Decision threshold {run.model_card['decision_threshold']:.4g}, tuned on the validation split and "
            "built into the model",
            "",
        ]
    out += ["## Intended use", "", project.goal or "Not stated in the project's scope.", ""]
    if project.delivery:
        out += ["Delivered as: " + "; ".join(project.delivery) + ".", ""]
    out += [
        "## Out-of-scope use",
        "",
        f"- Images unlike the training data ({project.dataset or 'see the dataset below'}): other parts, cameras, "
        "lighting or backgrounds; the model was not evaluated on them.",
        f"- Decisions about classes it was not trained on: it always answers one of {', '.join(version.classes)}.",
        "- Use without a person reviewing its errors where a missed defect is costly (see Caveats).",
        "",
    ]
    counts = dv.counts or {}
    out += [
        "## Training data",
        "",
        f'- Dataset version v{dv.number} "{dv.name}", content hash `{dv.content_hash}`, split seed {dv.seed}',
        "- Images per split and class: "
        + "; ".join(
            f"{split}: " + ", ".join(f"{c} {k}" for c, k in sorted((v or {}).items()))
            for split, v in sorted(counts.items())
            if isinstance(v, dict)
        )
        if counts
        else "- (counts not recorded)",
        "",
    ]
    out += [
        "## Evaluation data",
        "",
        f"The held-out test split of v{dv.number}: {n} images, never seen in training or model selection.",
        "",
    ]
    out += [
        "## Metrics",
        "",
        "| metric | value |",
        "|---|---|",
        f"| accuracy | {_ci(m.get('accuracy'), n)} |",
        f"| macro F1 | {m.get('macro_f1', 0):.4f} |",
        f"| macro precision / recall | {m.get('macro_precision', 0):.4f} / {m.get('macro_recall', 0):.4f} |",
    ]
    if m.get("roc_auc") is not None:
        out.append(f"| ROC AUC | {m['roc_auc']:.4f} |")
    out.append("")
    if scope:
        out += ["Targets of the approved scope: " + "; ".join(str(t) for t in scope) + ".", ""]
    out += [
        "## Per-class results",
        "",
        "| class | precision | recall (95 % CI) | F1 | support |",
        "|---|---|---|---|---|",
    ]
    for name, c in sorted((m.get("per_class") or {}).items()):
        out.append(
            f"| {_cell(name)} | {c['precision']:.4f} | {_ci(c['recall'], c['support'])} | {c['f1']:.4f} | "
            f"{c['support']} |"
        )
    out.append("")
    exports = {e.kind: e for e in (version.exports.all() if exports is None else exports)}
    out += ["## Exports", "", "| format | status | parity with Keras on the test split |", "|---|---|---|"]
    for kind in KINDS:
        e = exports.get(kind)
        if e is None:
            out.append(f"| {TITLES[kind]} | not made | — |")
            continue
        p = e.parity or {}
        if e.status == "succeeded" and p.get("n"):
            detail = f"same class on {p.get('agreement') or 0:.1%} of {p['n']} images"
            if p.get("max_abs_diff") is not None:
                detail += f", max Δp {p['max_abs_diff']:.2g}"
            if p.get("accuracy") is not None:
                detail += f", accuracy {p['accuracy']:.4f} (drop {p.get('accuracy_drop') or 0:+.4f})"
            detail += f", {p.get('runtime', '')}" if p.get("runtime") else ""
        elif e.status == "failed":
            detail = "failed: " + _cell(e.error[:200])
        else:
            detail = "—"
        out.append(f"| {TITLES[kind]} | {e.status} | {detail} |")
    out.append("")
    support = {k: c.get("support", 0) for k, c in (m.get("per_class") or {}).items()}
    out += [
        "## Caveats",
        "",
        f"- The test split is small ({n} images; the smallest class has {min(support.values()) if support else 0}): "
        "the intervals above are wide, and a few images move the figures.",
        "- Figures are for the data this version was trained on; monitoring compares live inputs with it "
        "(drift) and the promotion gate re-evaluates the champion on the same split.",
        "- Errors cost differently: read the per-class recall of the class you must not miss.",
        "",
    ]
    return "\n".join(out)
