"""The differences between two stored profiles, each one judged as it would strike a data scientist."""

from . import imagestats

PSI_MINOR, PSI_MAJOR = 0.1, 0.25


def _totals(profile):
    out = {}
    for per in profile.get("counts", {}).values():
        for c, n in per.items():
            out[c] = out.get(c, 0) + n
    return out


def compare_profiles(a: dict, b: dict) -> list[dict]:
    """[{"topic", "what", "a", "b", "note", "level"}] where level is major | minor | same, a → b."""
    out = []

    def add(topic, what, va, vb, level, note=""):
        out.append({"topic": topic, "what": what, "a": va, "b": vb, "level": level, "note": note})

    ta, tb = a.get("total", 0), b.get("total", 0)
    change = (tb - ta) / ta if ta else (1.0 if tb else 0.0)
    add(
        "counts",
        "Images",
        ta,
        tb,
        "major" if abs(change) > 0.25 else "minor" if ta != tb else "same",
        f"{change:+.1%}" if ta else "",
    )
    for split in ("train", "val", "test"):
        va = sum(a.get("counts", {}).get(split, {}).values())
        vb = sum(b.get("counts", {}).get(split, {}).values())
        if not va and not vb:
            continue
        sa, sb = va / (ta or 1), vb / (tb or 1)
        level = "major" if not va or not vb or abs(sb - sa) > 0.1 else "minor" if abs(sb - sa) > 0.03 else "same"
        note = "new split" if not va else "split gone" if not vb else f"share {sa:.1%} → {sb:.1%}"
        add("counts", f"Split {split}", va, vb, level, note)
    ca, cb = _totals(a), _totals(b)
    na, nb = sum(ca.values()) or 1, sum(cb.values()) or 1
    for c in sorted(set(ca) | set(cb)):
        sa, sb = ca.get(c, 0) / na, cb.get(c, 0) / nb
        level = (
            "major" if c not in ca or c not in cb or abs(sb - sa) > 0.1 else "minor" if abs(sb - sa) > 0.03 else "same"
        )
        note = "new class" if c not in ca else "class gone" if c not in cb else f"share {sa:.1%} → {sb:.1%}"
        add("counts", f"Class {c or '(unlabeled)'}", ca.get(c, 0), cb.get(c, 0), level, note)

    for stat in imagestats.NUMERIC_STATS:
        ga = a.get("groups", {}).get("all", {}).get(stat)
        gb = b.get("groups", {}).get("all", {}).get(stat)
        if not ga or not gb or not ga.get("n") or not gb.get("n"):
            continue
        p = imagestats.psi(ga["hist"], gb["hist"])
        ks = imagestats.ks_from_histograms(ga["hist"], gb["hist"])
        level = "major" if p > PSI_MAJOR else "minor" if p > PSI_MINOR else "same"
        add(
            "stats",
            imagestats.LABELS[stat],
            round(ga["mean"], 3),
            round(gb["mean"], 3),
            level,
            f"PSI {p:.3f}, KS {ks:.3f}",
        )

    for cat in ("size", "mode", "format"):
        ka = set(a.get("categorical", {}).get("all", {}).get(cat, {}))
        kb = set(b.get("categorical", {}).get("all", {}).get(cat, {}))
        level = "same" if ka == kb else "major"
        note = "; ".join(
            filter(
                None,
                [
                    f"new: {', '.join(sorted(kb - ka))}" if kb - ka else "",
                    f"gone: {', '.join(sorted(ka - kb))}" if ka - kb else "",
                ],
            )
        )
        add("format", cat.title() + "s", ", ".join(sorted(ka)), ", ".join(sorted(kb)), level, note)

    da, db = a.get("duplicates", {}), b.get("duplicates", {})
    for key, label in (
        ("cross_split_exact", "Exact duplicates across splits"),
        ("cross_split_near", "Near-duplicates across splits"),
        ("exact_images", "Exact duplicate images"),
        ("near_groups", "Near-duplicate groups"),
    ):
        va, vb = da.get(key, 0), db.get(key, 0)
        worse = vb > va
        level = "same" if va == vb else ("major" if worse and key.startswith("cross") else "minor")
        add("quality", label, va, vb, level, "worse" if worse else "better" if vb < va else "")
    ua, ub = len(a.get("unreadable", [])), len(b.get("unreadable", []))
    add("quality", "Unreadable files", ua, ub, "same" if ua == ub else "major" if ub > ua else "minor")
    for key, label in (("label_completeness", "Label completeness"), ("agreement", "Labeler agreement")):
        va, vb = a.get(key), b.get(key)
        if va is None and vb is None:
            continue
        diff = (vb or 0) - (va or 0)
        level = "same" if va == vb else "major" if abs(diff) > 0.05 else "minor"
        add("quality", label, None if va is None else round(va, 4), None if vb is None else round(vb, 4), level)
    return out
