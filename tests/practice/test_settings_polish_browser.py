"""Real Chromium at phone width (390×844): disclosures that look like controls,
the audit log's one-line timestamps, and deactivation that asks first."""

import pytest

from practice.models import AuditEvent
from practice.services import audit_record
from tests.support import browser_login

pytestmark = pytest.mark.browser

MARKER = """summary => {
  const style = getComputedStyle(summary);
  const before = getComputedStyle(summary, '::before');
  return {
    marker: before.content !== 'none' && before.content !== 'normal'
      && before.width !== '0px' && before.display !== 'none',
    cursor: style.cursor,
    framed: style.borderTopStyle !== 'none'
      || style.backgroundColor !== 'rgba(0, 0, 0, 0)',
    height: summary.getBoundingClientRect().height,
  };
}"""


def test_disclosures_on_the_sync_page_look_like_controls(phone, clinician):
    browser_login(phone, clinician.email)
    phone.wait_for_url("**/scheduling/**")
    phone.goto("/settings/sync/")
    for name in ("QR code for a phone", "Android"):
        summary = phone.locator("summary", has_text=name).first
        looks = summary.evaluate(MARKER)
        assert looks["marker"], f"{name!r} shows no marker"
        assert looks["cursor"] == "pointer"
        assert looks["height"] >= 24
    qr = phone.locator("summary", has_text="QR code for a phone").first
    assert qr.evaluate(MARKER)["framed"], "the QR disclosure has no button frame"
    # Reached and opened from the keyboard.
    qr.focus()
    assert qr.evaluate("element => element === document.activeElement")
    phone.keyboard.press("Enter")
    assert phone.get_by_alt_text("QR code", exact=False).is_visible()
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390


def test_audit_log_on_a_phone_reads_as_sentences(
    phone, practice, admin_user, clinician
):
    audit_record(
        kind=AuditEvent.Kind.SYNC_RESET,
        practice=practice,
        actor=clinician,
        target_user=clinician,
        details={"links": 3},
    )
    browser_login(phone, admin_user.email)
    phone.wait_for_url("**/scheduling/**")
    phone.goto("/settings/audit/")
    phone.get_by_text("Dana Rivera, LCSW reset their calendar links").wait_for()
    stamp = phone.locator("td[data-label=When] time").first
    line_height = float(
        stamp.evaluate("element => parseFloat(getComputedStyle(element).lineHeight)")
    )
    assert stamp.bounding_box()["height"] < 1.5 * line_height
    row = phone.locator("tr", has_text="reset their calendar links")
    details = row.locator("details.audit-details")
    assert not details.get_by_text("links: 3").is_visible()
    details.locator("summary").click()
    assert details.get_by_text("links: 3").is_visible()
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390


def test_deactivating_a_user_asks_first(phone, admin_user, clinician):
    browser_login(phone, admin_user.email)
    phone.wait_for_url("**/scheduling/**")
    phone.goto("/settings/users/")
    phone.get_by_role("link", name="Deactivate Dana Rivera, LCSW").click()
    phone.get_by_role("heading", name="Deactivate Dana Rivera, LCSW?").wait_for()
    clinician.refresh_from_db()
    assert clinician.is_active
    phone.get_by_role("link", name="Cancel").click()
    phone.wait_for_url("**/settings/users/")
    clinician.refresh_from_db()
    assert clinician.is_active

    phone.get_by_role("link", name="Deactivate Dana Rivera, LCSW").click()
    phone.get_by_role("button", name="Deactivate Dana Rivera, LCSW").click()
    phone.get_by_text("Dana Rivera, LCSW was deactivated.").wait_for()
    clinician.refresh_from_db()
    assert not clinician.is_active
