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
