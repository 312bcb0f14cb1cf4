"""Names that come in from outside (file names, project, class, token, model, run and rule names) are
shown to other people: a bidirectional control (U+202E turns "gpj.exe" around) or another invisible
control character must not reach a page, a CSV or a log. ``clean_name`` removes them everywhere a
name enters."""

import unicodedata

# Unicode categories removed: Cc (C0/C1 controls, incl. NUL and newlines), Cf (format: the bidi
# embeddings, overrides and isolates U+202A-202E / U+2066-2069, LRM/RLM, zero-width characters,
# the BOM), Co (private use), Cs (lone surrogates), Zl and Zp (line and paragraph separators).
_DROP = {"Cc", "Cf", "Co", "Cs", "Zl", "Zp"}


def clean_name(text) -> str:
    """``text`` without control, format (bidi) and separator characters, other whitespace made plain
    spaces and trimmed. Tabs and newlines become spaces rather than vanishing between two words."""
    out = []
    for ch in str(text or ""):
        if ch in "\t\n\r\x0b\x0c":
            out.append(" ")
        elif unicodedata.category(ch) not in _DROP:
            out.append(" " if unicodedata.category(ch) == "Zs" else ch)
    return "".join(out).strip()
