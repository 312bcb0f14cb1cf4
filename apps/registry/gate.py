"""The automated promotion gate. Four checks, each stored on the request with a clear message:

1. targets — the measurement targets of the project's *approved* scope revision are met on the
   candidate's test split (a draft's changed targets are shown as awaiting approval and do not
   apply). Accuracy, precision, recall and F1 (macro, or per class: ``recall(defect)``) are read
   from the evaluation; a p95 latency target is measured now in a loaded serving engine (the probe
   serving registers); a metric nothing measures is "not measured here" and does not block.
2. champion — the candidate is at least as good as the current production version on the SAME test
   split, within the project's margin. When both were evaluated on the same dataset version their
   stored test metrics are compared; otherwise the production model is run now (real TF inference
   on its hash-checked .keras artifact) on the candidate's dataset version's test split.
3. data — the candidate's dataset version passes its blocking data-quality assertions
   (apps.profiling.services.gate_check).
4. artifacts — every artifact's bytes still hash to the sha256 recorded at registration.
"""

from apps.profiling.services import gate_check

from .artifacts import ArtifactIntegrityError, artifact_bytes
from .evaluation import evaluate_on_split
from .exports import KINDS, TITLES
from .models import ModelVersion, RegistrySettings, Stage

PASS, FAIL, NOT_MEASURED = "pass", "fail", "not_measured"

CHAMPION_METRICS = ("accuracy", "macro_f1", "macro_precision", "macro_recall", "roc_auc", "average_precision")


def settings_for(project):
    obj, _ = RegistrySettings.objects.get_or_create(project=project)
    return obj


def _check(key, title, status, message, **extra):
    return {"key": key, "title": title, "status": status, "message": message, **extra}


def _fmt(v):
    return f"{v:.4f}".rstrip("0").rstrip(".") if isinstance(v, float) else str(v)


def check_targets(version, state, latency=None):
    """One check per target of the approved scope revision (``state``: the project's
    ``targets_state()``). A draft's changed targets are reported as awaiting approval and do not
    apply; with no approved revision, targets the PM wrote block."""
    from apps.training.ml.evaluate import metric_lookup, metric_needs_latency

    targets, pending, revision = state
    if targets is None:
        if not pending:
            return [
                _check(
                    "targets",
                    "Measurement targets",
                    PASS,
                    "The project's scope table sets no measurement target; nothing to meet.",
                )
            ]
        return [
            _check(
                "targets",
                "Targets approved by a manager",
                FAIL,
                f"The scope's targets ({'; '.join(pending)}) await a manager's approval: no scope revision "
                "was ever approved, so there is no approved bar to check this version against. The PM "
                "submits the scope and a manager approves it.",
                pending=pending,
            )
        ]
    out = []
    if not targets:
        out.append(
            _check(
                "targets",
                "Measurement targets",
                PASS,
                f"The approved scope (revision r{revision}) sets no measurement target; nothing to meet.",
            )
        )
    metrics = {
        **(version.metrics or {}),
        **({"p95_latency_ms": latency["p95_ms"]} if latency and latency.get("p95_ms") is not None else {}),
    }
    for t in targets:
        value = metric_lookup(metrics, t.metric)
        title = f"Target {t}"
        timed = metric_needs_latency(t.metric) and bool(latency)
        where = (
            (
                f" (p95 of {latency['n']} single-image predictions over the test split in a loaded serving engine, "
                f"p50 {_fmt(latency['p50_ms'])} ms)"
            )
            if timed and value is not None
            else " on the test split"
        )
        if value is None:
            why = (latency or {}).get("error") or f"the test split evaluation has no {t.metric}"
            out.append(
                _check(
                    "targets",
                    title,
                    NOT_MEASURED,
                    f"{t.metric} is not measured here ({why}); it does not block promotion.",
                    metric=t.metric,
                    target=str(t),
                )
            )
        elif t.met_by(value):
            out.append(
                _check(
                    "targets",
                    title,
                    PASS,
                    f"{t.metric} is {_fmt(value)}{where}: meets {t}.",
                    metric=t.metric,
                    value=value,
                    target=str(t),
                )
            )
        else:
            out.append(
                _check(
                    "targets",
                    title,
                    FAIL,
                    f"{t.metric} is {_fmt(value)}{where}"
                    + ("" if timed else f" of dataset version v{version.dataset_version.number}")
                    + f", which does not meet the target {t}.",
                    metric=t.metric,
                    value=value,
                    target=str(t),
                )
            )
    if pending is not None:
        out.append(
            _check(
                "targets_pending",
                "Targets awaiting approval",
                NOT_MEASURED,
                f"A draft of the scope changes the targets to {'; '.join(pending) or 'none'}; they apply "
                f"only once a manager approves that revision. The approved targets (revision r{revision}) "
                "were checked.",
                pending=pending,
                revision=revision,
            )
        )
    return out


# Latency is measured by the serving layer, which sits above the registry: it registers its probe
# here at start-up (apps.serving.apps), a call from above rather than an import of a later stage.
_latency_probe = None


def register_latency_probe(fn):
    """``fn(version) -> {"p95_ms", "p50_ms", "n"}``: the candidate's latency over its test split."""
    global _latency_probe
    _latency_probe = fn


def measure_latency(version, targets):
    """The candidate's latency when one of the approved ``targets`` asks for it (None when none does)."""
    from apps.training.ml.evaluate import metric_needs_latency

    if not any(metric_needs_latency(t.metric) for t in targets or []):
        return None
    if _latency_probe is None:
        return {"error": "no serving engine is installed to measure latency"}
    try:
        return _latency_probe(version)
    except Exception as exc:  # noqa: BLE001 - a failed measurement is reported on the check; it never passes the target
        return {"error": f"latency could not be measured: {exc}"}


def check_champion(version, champion, rules):
    metric, margin = rules.champion_metric, float(rules.champion_margin)
    title = f"At least as good as production ({metric}, margin {margin:g})"
    if champion is None:
        return _check(
            "champion", title, PASS, "No version is in production yet: there is no champion to beat.", how="none"
        ), None
    cand = version.metrics.get(metric)
    if not isinstance(cand, (int, float)):
        return _check(
            "champion",
            title,
            FAIL,
            f"The candidate has no {metric} on its test split to compare.",
            champion=champion.number,
            how="none",
        ), None
    if champion.dataset_version_id == version.dataset_version_id:
        champ_metrics = champion.metrics
        how = "stored"
        how_text = (
            f"both were evaluated on the test split of dataset version v{version.dataset_version.number}; "
            "their stored test metrics are compared"
        )
    else:
        missing = sorted(set(champion.classes) - set(version.dataset_version.classes))
        if missing:
            return _check(
                "champion",
                title,
                FAIL,
                f"Production v{champion.number} predicts {', '.join(missing)}, which the candidate's "
                f"dataset version v{version.dataset_version.number} does not have: they cannot be compared "
                "on the same test split.",
                champion=champion.number,
                how="none",
            ), None
        try:
            champ_metrics = evaluate_on_split(champion, version.dataset_version)
        except ArtifactIntegrityError as exc:
            return _check(
                "champion",
                title,
                FAIL,
                f"Production v{champion.number} cannot be evaluated: {exc}",
                champion=champion.number,
                how="none",
            ), None
        how = "evaluated"
        how_text = (
            f"production v{champion.number} was run now on the test split of dataset version "
            f"v{version.dataset_version.number} ({champ_metrics['n']} images)"
        )
    champ = champ_metrics.get(metric)
    if not isinstance(champ, (int, float)):
        return _check(
            "champion",
            title,
            FAIL,
            f"Production v{champion.number} has no {metric} to compare.",
            champion=champion.number,
            how=how,
        ), champ_metrics
    ok = cand >= champ - margin
    verdict = "at least as good as" if cand >= champ else ("within the margin of" if ok else "worse than")
    msg = (
        f"{metric} {_fmt(cand)} (candidate v{version.number}) vs {_fmt(champ)} (production v{champion.number}): "
        f"{verdict} production; {how_text}."
    )
    if not ok:
        msg += f" It must be at least {_fmt(champ - margin)}."
    return _check(
        "champion",
        title,
        PASS if ok else FAIL,
        msg,
        champion=champion.number,
        how=how,
        candidate_value=cand,
        champion_value=champ,
    ), champ_metrics


def check_data(version):

    dv = version.dataset_version
    result = gate_check(dv)
    title = f"Dataset version v{dv.number} passed its blocking assertions"
    if result.passed:
        note = " (a data scientist overrode the gate)" if getattr(result, "override", None) else ""
        return _check("data", title, PASS, f"Dataset version v{dv.number} passes the data-quality gate{note}.")
    return _check(
        "data",
        title,
        FAIL,
        f"Dataset version v{dv.number} fails the data-quality gate: "
        + "; ".join(result.failures or ["see its profile"]),
        failures=list(result.failures or []),
    )


def check_artifacts(version):
    title = "Artifacts match their registered sha256"
    if "keras" not in (version.artifacts or {}):
        return _check("artifacts", title, FAIL, f"{version} has no keras artifact to serve.")
    bad = []
    for kind in sorted(version.artifacts):
        try:
            artifact_bytes(version, kind)
        except ArtifactIntegrityError as exc:
            bad.append(str(exc))
    if bad:
        return _check("artifacts", title, FAIL, " ".join(bad))
    kinds = ", ".join(sorted(version.artifacts))
    return _check("artifacts", title, PASS, f"Every artifact ({kinds}) hashes to its registered sha256.")


EXPORT_AGREEMENT = 0.99


def check_exports(version):
    """Every export (ONNX, LiteRT float32 and int8) finished and gives Keras's class on ≥ 99 % of the
    test split, measured by its own runtime (switched on in the registry settings)."""

    title = f"Exports agree with the Keras model on ≥ {EXPORT_AGREEMENT:.0%} of the test split"
    runs = {e.kind: e for e in version.exports.all()}
    problems, fine = [], []
    for kind in KINDS:
        e = runs.get(kind)
        if e is None:
            problems.append(f"{TITLES[kind]} was never made")
        elif e.status == "failed":
            problems.append(f"{TITLES[kind]} failed: {e.error[:200]}")
        elif e.status != "succeeded":
            problems.append(f"{TITLES[kind]} is still {e.status}")
        elif (e.parity or {}).get("agreement") is None or e.parity["agreement"] < EXPORT_AGREEMENT:
            problems.append(
                f"{TITLES[kind]} agrees on {(e.parity or {}).get('agreement') or 0:.1%} of "
                f"{(e.parity or {}).get('n', 0)} images"
            )
        else:
            fine.append(f"{TITLES[kind]} {e.parity['agreement']:.1%}")
    if problems:
        return _check("exports", title, FAIL, "; ".join(problems) + ".")
    return _check("exports", title, PASS, "Every export agrees: " + ", ".join(fine) + ".")


def gate_run(version):
    """All checks for promoting ``version``: {"passed", "checks", "champion", "champion_metrics", "rules"}."""
    rules = settings_for(version.registered_model.project)
    champion = (
        ModelVersion.objects.filter(registered_model=version.registered_model, stage=Stage.PRODUCTION)
        .exclude(pk=version.pk)
        .first()
    )
    state = version.registered_model.project.targets_state()
    latency = measure_latency(version, state[0])
    checks = check_targets(version, state, latency)
    champ_check, champ_metrics = check_champion(version, champion, rules)
    checks += [champ_check, check_data(version), check_artifacts(version)]
    if rules.require_export_parity:
        checks.append(check_exports(version))
    return {
        "passed": all(c["status"] != FAIL for c in checks),
        "latency": latency,
        "checks": checks,
        "failures": [c["message"] for c in checks if c["status"] == FAIL],
        "champion": champion.number if champion else None,
        "champion_id": champion.pk if champion else None,
        "champion_metrics": {k: v for k, v in champ_metrics.items() if k != "curves"} if champ_metrics else None,
        "rules": {
            "champion_metric": rules.champion_metric,
            "champion_margin": rules.champion_margin,
            "required_approvals": rules.required_approvals,
            "require_export_parity": rules.require_export_parity,
        },
    }
