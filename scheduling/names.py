"""Patient initials: the only patient data that ever leaves Tend through a feed."""

import unicodedata


def _first_letter(text: str) -> str:
    """The first letter of ``text`` (skipping quotes, digits, controls), upper-cased."""
    for char in unicodedata.normalize("NFC", text):
        if unicodedata.category(char)[0] == "L":
            upper = char.upper()
            # Some letters upper-case to several characters ("ß" -> "SS"): keep one.
            return upper if len(upper) == 1 else char
    return ""


def initials(first_name: str, last_name: str) -> str:
    """The first letter of the given name and of the family name, each followed by a
    full stop: "Élodie O'Brien" -> "É.O.", "Mary-Kate van der Berg" -> "M.V.",
    "Cher" -> "C.". A name in one field, in any script, gives one initial
    ("王小明" -> "王."). Nothing else of the name, and no punctuation or control
    character from it, ever appears."""
    letters = [_first_letter(part) for part in (first_name or "", last_name or "")]
    letters = [letter for letter in letters if letter]
    if not letters:
        return "?"
    return "".join(f"{letter}." for letter in letters)


# Apostrophes vanish ("O'Brien" -> "obrien"); other punctuation separates words.
_APOSTROPHES = {ord(char): None for char in "'’‘`´ʼ"}


def search_fold(text: str) -> str:
    """``text`` as stored in ``Patient.search_name`` and compared when searching:
    accents removed, case folded, apostrophes dropped, other punctuation and runs of
    white space turned into single spaces ("Élodie O'Brien" -> "elodie obrien")."""
    decomposed = unicodedata.normalize("NFKD", text or "")
    kept = []
    for char in decomposed.translate(_APOSTROPHES):
        category = unicodedata.category(char)
        if category == "Mn":
            continue
        kept.append(char if category[0] in "LN" else " ")
    return " ".join("".join(kept).casefold().split())
