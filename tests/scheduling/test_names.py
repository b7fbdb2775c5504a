import pytest

from scheduling.models import Patient
from scheduling.names import initials, search_fold


@pytest.mark.parametrize(
    ("first", "last", "expected"),
    [
        ("Élodie", "O'Brien", "É.O."),
        ("Mary-Kate", "van der Berg", "M.V."),
        ("Cher", "", "C."),
        ("王小明", "", "王."),
        ("小明", "王", "小.王."),
        ("Анна", "Смирнова", "А.С."),
        ("José María", "García-López", "J.G."),
        ("Siobhán", "Ní Bhraonáin", "S.N."),
        ("Zoë", "D'Angelo", "Z.D."),
        ("D'Andre", "Washington", "D.W."),
        ("'Aisha", "", "A."),
        ("  élodie ", " o'brien", "É.O."),
        ("Björn", "Þórsson", "B.Þ."),
        ("Ludwig", "von Hohenberg", "L.V."),
        ("", "Okafor", "O."),
        ("", "", "?"),
        ("123", "---", "?"),
    ],
)
def test_initials(first, last, expected):
    assert initials(first, last) == expected


def test_initials_of_decomposed_accents_are_composed():
    decomposed = "E\u0301lodie"  # E + combining acute accent
    assert initials(decomposed, "O'Brien") == "É.O."
    assert len(initials(decomposed, "")) == 2


def test_initials_never_carry_controls_or_punctuation():
    assert initials("\x00\r\nMia;", ":\\,Lopez") == "M.L."


def test_letter_that_uppercases_to_two_keeps_one_character():
    assert initials("ßara", "") == "ß."


def test_patient_initials_use_the_one_function():
    patient = Patient(first_name="Mary-Kate", last_name="van der Berg")
    assert patient.initials == "M.V."


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Élodie O'Brien", "elodie obrien"),
        ("Mary-Kate van der Berg", "mary kate van der berg"),
        ("ZOË  D’Angelo", "zoe dangelo"),
        ("王小明", "王小明"),
        ("Nguyễn Thị Lan", "nguyen thi lan"),
        ("", ""),
    ],
)
def test_search_fold(text, expected):
    assert search_fold(text) == expected
