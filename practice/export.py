"""The audit log as CSV, for administrators to keep or hand to a reviewer."""

import csv
from collections.abc import Iterable, Iterator

from django.utils import timezone

from practice.models import AuditEvent, Practice

AUDIT_CSV_HEADER = (
    "When",
    "Event",
    "Event code",
    "By",
    "By email",
    "Concerning",
    "Patient numbers",
    "Address",
    "Details",
)
# A spreadsheet runs a cell that starts with one of these as a formula.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(value: object) -> str:
    """The cell as text, with a leading quote where a spreadsheet would otherwise
    read it as a formula (a name or email typed by anyone can start with "=")."""
    text = "" if value is None else str(value)
    return f"'{text}" if text.startswith(FORMULA_STARTS) else text


class _Line:
    """A file-like object whose ``write`` hands the CSV line back."""

    def write(self, value: str) -> str:
        return value


def audit_csv_lines(
    *, practice: Practice, events: Iterable[AuditEvent]
) -> Iterator[str]:
    """The events as CSV lines, times in the practice's zone. Patients appear by
    number only: the export leaves Tend, their names need not."""
    writer = csv.writer(_Line())
    zone = practice.zone
    yield writer.writerow(AUDIT_CSV_HEADER)
    for event in events:
        row = (
            timezone.localtime(event.created_at, zone).isoformat(timespec="seconds"),
            event.get_kind_display(),
            event.kind,
            event.actor.label if event.actor else "",
            event.actor.email if event.actor else "",
            event.target_user.label if event.target_user else "",
            " ".join(str(patient_id) for patient_id in event.patient_id_list),
            event.client_ip or "",
            "; ".join(event.detail_lines()),
        )
        yield writer.writerow([csv_safe(cell) for cell in row])
