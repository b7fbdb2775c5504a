"""Text that fits on one line and reads as what it is.

Names, titles and other one-line values are kept this way when they are entered,
and every calendar publishes them this way (``scheduling.publication``): line
breaks, tabs and other separators become spaces and runs of them one space;
control characters, non-characters and bidirectional controls (which can make
text read differently from what it is, e.g. U+202E RIGHT-TO-LEFT OVERRIDE) are
removed; no space at either end.
"""

import unicodedata

# Embeddings, overrides, isolates and marks.
BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)
NON_CHARACTERS = frozenset("\ufeff\ufffe\uffff")
BREAKS = frozenset("\t\n\r\x0b\x0c\x1c\x1d\x1e\x1f\x85")


def single_line(value: str | None) -> str:
    """``value`` on one line, without invisible controls (see the module)."""
    out = []
    for char in value or "":
        if char in BIDI_CONTROLS or char in NON_CHARACTERS:
            continue
        if char in BREAKS:
            out.append(" ")
            continue
        category = unicodedata.category(char)
        if category in ("Cc", "Cs"):
            continue
        out.append(" " if category in ("Zs", "Zl", "Zp") else char)
    return " ".join("".join(out).split())
