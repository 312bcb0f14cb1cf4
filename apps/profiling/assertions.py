"""Built-in data-quality checks, the assertion document (JSON/YAML) and suggestions from a profile.

A check reads the compact profile (see services.profile_build) and its parameters and answers
``Outcome(passed, measured, bound, message)``. The project's document is a list of entries::

    assertions:
      - check: min_images_per_class
        severity: blocking        # or warning
        min: 20
      - check: stat_range
        severity: warning
        stat: brightness
        of: mean                  # mean | median | q01 | q05 | q25 | q75 | q95 | q99
        min: 120
        max: 220
"""

from dataclasses import dataclass

import yaml
from django.core.exceptions import ValidationError

from .imagestats import NUMERIC_STATS, QUANTILE_LEVELS

SPLITS = ("train", "val", "test")
QUANTILE_KEYS = {f"q{int(round(q * 100)):02d}": i for i, q in enumerate(QUANTILE_LEVELS)}
QUANTILE_KEYS["median"] = QUANTILE_KEYS["q50"]
AGGREGATES = ("mean", "median", *sorted(k for k in QUANTILE_KEYS if k != "median"))


@dataclass
class Outcome:
    passed: bool
    measured: object
    bound: str
    message: str


@dataclass
class Param:
    kind: type
    required: bool = False
    default: object = None
    choices: tuple = ()
    lo: float | None = None
    hi: float | None = None
    help: str = ""


def _fmt(x):
    if x is None:
        return "n/a"
    if isinstance(x, float):
        return f"{x:.4g}"
    return str(x)


def _class_counts(profile, split=None):
    counts = dict.fromkeys(profile.get("classes", []), 0)
    for s, per in profile.get("counts", {}).items():
        if split and s != split:
            continue
        for label, n in per.items():
            if label:
                counts[label] = counts.get(label, 0) + n
    return counts


def check_min_images_per_class(profile, p):
    counts = _class_counts(profile, p.get("split"))
    where = f" in {p['split']}" if p.get("split") else ""
    if not counts:
        return Outcome(False, 0, f"≥ {p['min']}", "The version has no labeled images.")
    low = {c: n for c, n in counts.items() if n < p["min"]}
    smallest = min(counts.values())
    msg = (
        f"Too few images{where}: " + ", ".join(f"{c} has {n}" for c, n in sorted(low.items()))
        if low
        else f"Every class has at least {p['min']} images{where} (smallest: {smallest})."
    )
    return Outcome(not low, smallest, f"≥ {p['min']}", msg)


def check_class_ratio(profile, p):
    counts = _class_counts(profile)
    total = sum(counts.values())
    if not total:
        return Outcome(False, None, "", "The version has no labeled images.")
    shares = {c: n / total for c, n in counts.items()}
    if p.get("class"):
        shares = {p["class"]: shares.get(p["class"], 0.0)}
    lo, hi = p.get("min", 0.0), p.get("max", 1.0)
    bad = {c: s for c, s in shares.items() if not (lo <= s <= hi)}
    bound = f"share in [{_fmt(lo)}, {_fmt(hi)}]"
    measured = {c: round(s, 4) for c, s in shares.items()}
    if bad:
        return Outcome(
            False,
            measured,
            bound,
            "Class share out of bounds: " + ", ".join(f"{c} {s:.1%}" for c, s in sorted(bad.items())),
        )
    return Outcome(
        True,
        measured,
        bound,
        "Class shares within bounds: " + ", ".join(f"{c} {s:.1%}" for c, s in sorted(shares.items())),
    )


def check_no_cross_split_duplicates(profile, p):
    dup = profile.get("duplicates", {})
    exact = dup.get("cross_split_exact", 0)
    near = dup.get("cross_split_near", 0) if p.get("near", True) else 0
    n = exact + near
    what = "exact or near duplicates" if p.get("near", True) else "exact duplicates"
    if n:
        return Outcome(False, n, "0", f"{exact} exact and {near} near-duplicate group(s) cross splits (leakage).")
    return Outcome(True, 0, "0", f"No {what} cross splits.")


def check_single_size(profile, p):
    sizes = profile.get("categorical", {}).get("all", {}).get("size", {})
    ok = len(sizes) <= 1
    msg = (
        f"All images are {next(iter(sizes))}."
        if len(sizes) == 1
        else f"{len(sizes)} sizes: "
        + ", ".join(f"{k} ({v})" for k, v in sorted(sizes.items(), key=lambda kv: -kv[1])[:5])
        if sizes
        else "No readable images."
    )
    return Outcome(ok, len(sizes), "1 size", msg)


def check_single_mode(profile, p):
    modes = profile.get("categorical", {}).get("all", {}).get("mode", {})
    ok = len(modes) <= 1
    msg = (
        f"All images are mode {next(iter(modes))}."
        if len(modes) == 1
        else f"{len(modes)} modes: " + ", ".join(f"{k} ({v})" for k, v in sorted(modes.items()))
        if modes
        else "No readable images."
    )
    return Outcome(ok, len(modes), "1 mode", msg)


def _group_key(p):
    cls, split = p.get("class"), p.get("split")
    if cls and split:
        return f"{split}/{cls}"
    if cls:
        return f"class:{cls}"
    if split:
        return f"split:{split}"
    return "all"


def check_stat_range(profile, p):
    key = _group_key(p)
    summ = profile.get("groups", {}).get(key, {}).get(p["stat"])
    of = p.get("of", "mean")
    lo, hi = p.get("min"), p.get("max")
    bound = (
        f"[{_fmt(lo)}, {_fmt(hi)}]"
        if lo is not None and hi is not None
        else f"≥ {_fmt(lo)}"
        if lo is not None
        else f"≤ {_fmt(hi)}"
    )
    where = "" if key == "all" else f" ({key})"
    if not summ or not summ.get("n"):
        return Outcome(False, None, bound, f"No readable images{where} to measure {p['stat']}.")
    value = summ["mean"] if of == "mean" else summ["quantiles"][QUANTILE_KEYS[of]]
    ok = (lo is None or value >= lo) and (hi is None or value <= hi)
    return Outcome(ok, round(value, 4), bound, f"{of} {p['stat']}{where} is {_fmt(value)}, bound {bound}.")


def check_label_completeness(profile, p):
    value = profile.get("label_completeness")
    if value is None:
        return Outcome(False, None, f"≥ {_fmt(p['min'])}", "Label completeness was not measured.")
    ok = value >= p["min"]
    return Outcome(
        ok,
        round(value, 4),
        f"≥ {_fmt(p['min'])}",
        f"{value:.1%} of images carry a label ({profile.get('unlabeled', 0)} without).",
    )


def check_agreement(profile, p):
    value = profile.get("agreement")
    if value is None:
        return Outcome(
            False,
            None,
            f"≥ {_fmt(p['min'])}",
            "No labeler agreement is measured for this version (labeling offers none).",
        )
    return Outcome(value >= p["min"], round(value, 4), f"≥ {_fmt(p['min'])}", f"Labeler agreement is {value:.3f}.")


def check_no_unreadable(profile, p):
    n = len(profile.get("unreadable", []))
    names = ", ".join(u["name"] for u in profile.get("unreadable", [])[:5])
    ok = n <= p.get("max", 0)
    return Outcome(ok, n, f"≤ {p.get('max', 0)}", f"{n} unreadable file(s)" + (f": {names}" if n else "."))


_class = Param(str, help="only this class")
_split = Param(str, choices=SPLITS, help="only this split")
CHECKS = {
    "min_images_per_class": (
        check_min_images_per_class,
        "Minimum images per class",
        {"min": Param(int, required=True, lo=0, help="fewest images any class may have"), "split": _split},
    ),
    "class_ratio": (
        check_class_ratio,
        "Class ratio within bounds",
        {
            "min": Param(float, default=0.0, lo=0, hi=1, help="smallest share of the labeled images"),
            "max": Param(float, default=1.0, lo=0, hi=1, help="largest share"),
            "class": _class,
        },
    ),
    "no_cross_split_duplicates": (
        check_no_cross_split_duplicates,
        "No duplicates across splits",
        {"near": Param(bool, default=True, help="count near-duplicates (perceptual hash) too")},
    ),
    "single_size": (check_single_size, "All images one size", {}),
    "single_mode": (check_single_mode, "All images one mode", {}),
    "stat_range": (
        check_stat_range,
        "Statistic within range",
        {
            "stat": Param(str, required=True, choices=NUMERIC_STATS),
            "of": Param(str, default="mean", choices=AGGREGATES),
            "min": Param(float),
            "max": Param(float),
            "class": _class,
            "split": _split,
        },
    ),
    "label_completeness": (
        check_label_completeness,
        "Label completeness",
        {"min": Param(float, required=True, lo=0, hi=1, help="share of images with a label")},
    ),
    "agreement": (
        check_agreement,
        "Labeler agreement",
        {"min": Param(float, required=True, lo=-1, hi=1, help="agreement between labelers (kappa or share)")},
    ),
    "no_unreadable": (
        check_no_unreadable,
        "No unreadable files",
        {"max": Param(int, default=0, lo=0, help="most unreadable files tolerated")},
    ),
}
SEVERITIES = ("blocking", "warning")


def title_of(check, params):
    base = CHECKS[check][1]
    if check == "stat_range":
        base = f"{params.get('of', 'mean')} {params['stat']} within range"
    scope = [params[k] for k in ("split", "class") if params.get(k)]
    return base + (f" ({', '.join(scope)})" if scope else "")


def evaluate(check, params, profile) -> Outcome:
    return CHECKS[check][0](profile, params)


# The document ------------------------------------------------------------------------------------


def _coerce(value, spec: Param, where):
    if spec.kind is bool:
        if isinstance(value, bool):
            return value
        raise ValidationError(f"{where} must be true or false, not {value!r}.")
    if spec.kind in (int, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValidationError(f"{where} must be a number, not {value!r}.")
        if spec.kind is int and float(value) != int(value):
            raise ValidationError(f"{where} must be a whole number, not {value!r}.")
        value = spec.kind(value)
        if (spec.lo is not None and value < spec.lo) or (spec.hi is not None and value > spec.hi):
            raise ValidationError(f"{where} must be between {spec.lo} and {spec.hi}, not {value}.")
        return value
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(f"{where} must be a non-empty text, not {value!r}.")
    if spec.choices and value not in spec.choices:
        raise ValidationError(f"{where} must be one of {', '.join(spec.choices)}, not {value!r}.")
    return value.strip()


def parse_document(doc) -> list[dict]:
    """Validate an assertion document (a dict with ``assertions`` or a bare list, or YAML/JSON text).

    Returns ``[{"check", "severity", "params"}]``; raises ValidationError naming the entry and field.
    """
    if isinstance(doc, (str, bytes)):
        try:
            doc = yaml.safe_load(doc) if doc.strip() else {"assertions": []}
        except yaml.YAMLError as exc:
            raise ValidationError({"document": f"Not valid YAML/JSON: {exc}"}) from exc
    if isinstance(doc, dict):
        unknown = set(doc) - {"assertions"}
        if unknown:
            raise ValidationError(
                {
                    "document": f"Unknown top-level key(s): {', '.join(sorted(map(str, unknown)))}; "
                    "expected only 'assertions'."
                }
            )
        doc = doc.get("assertions") or []
    if not isinstance(doc, list):
        raise ValidationError({"document": "Expected a list of assertions under 'assertions'."})
    errors, out = [], []
    for i, entry in enumerate(doc, start=1):
        where = f"Assertion {i}"
        try:
            if not isinstance(entry, dict):
                raise ValidationError(f"{where} must be a mapping with 'check', 'severity' and parameters.")
            entry = dict(entry)
            check = entry.pop("check", None)
            if check not in CHECKS:
                raise ValidationError(f"{where}: unknown check {check!r}; known: {', '.join(CHECKS)}.")
            where = f"Assertion {i} ({check})"
            severity = entry.pop("severity", "blocking")
            if severity not in SEVERITIES:
                raise ValidationError(f"{where}: severity must be blocking or warning, not {severity!r}.")
            if isinstance(entry.get("params"), dict):  # also accept nested params
                entry.update(entry.pop("params"))
            specs = CHECKS[check][2]
            unknown = set(entry) - set(specs)
            if unknown:
                raise ValidationError(
                    f"{where}: unknown parameter(s) {', '.join(sorted(map(str, unknown)))}; "
                    f"it takes {', '.join(specs) or 'none'}."
                )
            params = {}
            for name, spec in specs.items():
                if entry.get(name) is None:
                    if spec.required:
                        raise ValidationError(f"{where}: parameter '{name}' is required.")
                    if spec.default is not None:
                        params[name] = spec.default
                    continue
                params[name] = _coerce(entry[name], spec, f"{where}: '{name}'")
            if check == "stat_range" and params.get("min") is None and params.get("max") is None:
                raise ValidationError(f"{where}: give 'min', 'max' or both.")
            if params.get("min") is not None and params.get("max") is not None and params["min"] > params["max"]:
                raise ValidationError(f"{where}: 'min' ({params['min']}) is above 'max' ({params['max']}).")
            out.append({"check": check, "severity": severity, "params": params})
        except ValidationError as exc:
            errors.extend(exc.messages)
    if errors:
        raise ValidationError({"document": errors})
    return out


def to_document(rules) -> dict:
    """Rules (models or dicts with check/severity/params) as the flat document users edit."""
    out = []
    for r in rules:
        check = r["check"] if isinstance(r, dict) else r.check_name
        severity = r["severity"] if isinstance(r, dict) else r.severity
        params = r["params"] if isinstance(r, dict) else r.params
        out.append({"check": check, "severity": severity, **params})
    return {"assertions": out}


def to_yaml(doc) -> str:
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)


def suggest(profile) -> list[dict]:
    """A set of assertions that a profile the team trusts passes, with sensible slack."""
    out = []
    counts = _class_counts(profile)
    if counts:
        smallest = min(counts.values())
        out.append(
            {"check": "min_images_per_class", "severity": "blocking", "params": {"min": max(1, int(smallest * 0.8))}}
        )
        total = sum(counts.values()) or 1
        shares = [n / total for n in counts.values()]
        out.append(
            {
                "check": "class_ratio",
                "severity": "warning",
                "params": {"min": round(max(0.0, min(shares) - 0.1), 2), "max": round(min(1.0, max(shares) + 0.1), 2)},
            }
        )
    out.append({"check": "no_cross_split_duplicates", "severity": "blocking", "params": {"near": True}})
    cat = profile.get("categorical", {}).get("all", {})
    if len(cat.get("size", {})) == 1:
        out.append({"check": "single_size", "severity": "blocking", "params": {}})
    if len(cat.get("mode", {})) == 1:
        out.append({"check": "single_mode", "severity": "blocking", "params": {}})
    for stat in ("brightness", "contrast", "sharpness", "entropy"):
        s = profile.get("groups", {}).get("all", {}).get(stat)
        if s and s.get("n"):
            q = s["quantiles"]
            # The mean may wander within the middle 90% of single images of the trusted set.
            out.append(
                {
                    "check": "stat_range",
                    "severity": "warning",
                    "params": {
                        "stat": stat,
                        "of": "mean",
                        "min": round(q[QUANTILE_KEYS["q05"]], 3),
                        "max": round(q[QUANTILE_KEYS["q95"]], 3),
                    },
                }
            )
    lc = profile.get("label_completeness")
    if lc is not None:
        out.append({"check": "label_completeness", "severity": "blocking", "params": {"min": round(min(1.0, lc), 3)}})
    ag = profile.get("agreement")
    if ag is not None:
        out.append({"check": "agreement", "severity": "warning", "params": {"min": round(max(0.0, ag - 0.05), 3)}})
    out.append({"check": "no_unreadable", "severity": "blocking", "params": {"max": 0}})
    return out
