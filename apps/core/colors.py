"""Class colours that read the right way round: a class named like "good" is green, a defect class is
a warm colour. Every app that colours a class without a colour of its own (a new label class, a chart
of classes the schema does not know) asks here; the label schema can change any class's colour."""

import re

GREEN = "#1a7f4b"
WARM = ["#b42318", "#c2410c", "#a86200", "#be185d", "#9d174d", "#b54708", "#7c2d12", "#e11d48"]
GOOD_WORDS = {
    "good",
    "ok",
    "okay",
    "normal",
    "pass",
    "passed",
    "nominal",
    "clean",
    "fine",
    "accept",
    "accepted",
    "no_defect",
    "nodefect",
    "non_defective",
    "undamaged",
    "intact",
    "negative",
    "healthy",
}


def is_good_name(name: str) -> bool:
    key = re.sub(r"[\s\-]+", "_", (name or "").strip().lower())
    return key in GOOD_WORDS


def class_color(name: str, index: int = 0) -> str:
    """Green for a good-like name; otherwise a warm colour, the ``index``-th of the warm set."""
    return GREEN if is_good_name(name) else WARM[index % len(WARM)]


def class_palette(names) -> dict:
    """{name: colour} for classes with no colour of their own, warm colours handed out in order."""
    out, warm = {}, 0
    for name in names:
        if is_good_name(name):
            out[name] = GREEN
        else:
            out[name] = WARM[warm % len(WARM)]
            warm += 1
    return out
