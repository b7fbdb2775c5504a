"""Accessibility as a tested property: axe-core's WCAG 2.2 AA rules find nothing on
any main page at phone (390×844) and desktop (1366×800) width, ``target-size``
included, and the keyboard focus outline stands out 3:1 from what surrounds it.

axe-core comes from npm (``package.json``; ``scripts/test-deps`` installs it) and is
put into each page by the browser context, never by Tend: the pages' strict
Content-Security-Policy stays as it is."""

import re
from datetime import timedelta
from email.message import Message
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from scheduling.models import Appointment
from tests.factories import (
    change_appointment,
    local,
    make_appointment,
    make_busy_calendar,
    make_busy_time,
    make_location,
    make_patient,
    make_service,
    make_team,
)
from tests.support import browser_login

pytestmark = pytest.mark.browser

AXE = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"
WCAG_22_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]
WIDTHS = {
    "phone": {"width": 390, "height": 844},
    "desktop": {"width": 1366, "height": 800},
}

RUN_AXE = """async (tags) => {
  const results = await axe.run(document, {
    runOnly: {type: "tag", values: tags},
    resultTypes: ["violations"],
  });
  return results.violations.map((violation) => ({
    id: violation.id,
    impact: violation.impact,
    help: violation.help,
    targets: violation.nodes.map((node) => node.target.join(" ")),
    summaries: violation.nodes.map((node) => node.failureSummary),
  }));
}"""


def readable(violations: list[dict], *, shown: int = 5) -> str:
    """One paragraph per rule: its id and help, then the first few elements."""
    lines = []
    for violation in violations:
        count = len(violation["targets"])
        lines.append(
            f"{violation['id']} ({violation['impact']}, {count} elements): "
            f"{violation['help']}"
        )
        for target, summary in list(
            zip(violation["targets"], violation["summaries"], strict=True)
        )[:shown]:
            lines.append(f"    {target}")
            lines.append("        " + summary.replace("\n", "\n        "))
        if count > shown:
            lines.append(f"    … and {count - shown} more")
    return "\n".join(lines)


def axe_violations(page) -> list[dict]:
    return page.evaluate(RUN_AXE, WCAG_22_AA)


@pytest.fixture(params=WIDTHS)
def screen(request):
    """A signed-out page at phone width (the ``phone`` fixture) or desktop width,
    that loads axe-core into every document it opens: an init script, which the
    page's Content-Security-Policy does not stop and Tend never serves."""
    if not AXE.exists():
        pytest.fail(f"{AXE} is missing; run scripts/test-deps")
    if request.param == "phone":
        screen = request.getfixturevalue("phone")
    else:
        screen = request.getfixturevalue("page")
        screen.set_viewport_size(WIDTHS["desktop"])
    screen.add_init_script(path=str(AXE))
    return screen


@pytest.fixture
def busy_practice(admin_user, clinician, other_clinician, scheduler):
    """A practice with something on every page: patients, appointments that
    overlap, an event, a location, a service, a team and audit entries."""
    practice = admin_user.practice
    office = make_location(practice, name="Main Street office")
    service = make_service(practice, name="Psychotherapy", minutes=50)
    patient = make_patient(
        practice,
        first_name="Élodie",
        last_name="O'Brien",
        primary_clinician=clinician,
        email="elodie@example.test",
        actor=admin_user,
    )
    second = make_patient(
        practice, first_name="Kwame", last_name="Mensah", primary_clinician=clinician
    )
    appointment = make_appointment(
        clinician,
        patients=[patient],
        start=local(practice, days=1, hour=9),
        location=office,
        service=service,
        actor=admin_user,
    )
    make_appointment(
        clinician, patients=[second], start=local(practice, days=1, hour=9, minute=30)
    )
    make_appointment(
        admin_user, patients=[second], start=local(practice, days=2, hour=14)
    )
    make_appointment(
        other_clinician,
        kind=Appointment.Kind.EVENT,
        title="Out of office",
        patients=[],
        start=local(practice, days=3, hour=8),
        minutes=480,
    )
    # Seven at once: lanes, narrow blocks, "+N more" and a full month cell.
    for minutes in range(0, 70, 10):
        make_appointment(
            clinician,
            start=local(practice, days=1, hour=11) + timedelta(minutes=minutes),
        )
    cancelled = make_appointment(
        clinician, patients=[patient], start=local(practice, days=1, hour=15)
    )
    change_appointment(cancelled, status=Appointment.Status.CANCELLED)
    # Personal busy time beside an appointment, tentative, and from a stale
    # calendar: the hatched blocks and their words.
    make_busy_time(clinician, start=local(practice, days=1, hour=9, minute=30))
    make_busy_time(clinician, start=local(practice, days=1, hour=16), tentative=True)
    stale = make_busy_calendar(
        other_clinician, read_at=local(practice, days=-3, hour=9)
    )
    make_busy_time(
        other_clinician, calendar=stale, start=local(practice, days=1, hour=13)
    )
    team = make_team(
        practice, name="Downtown team", members=[clinician, other_clinician]
    )
    return {
        "team": team,
        "appointment": appointment,
        "patient": patient,
        "clinician": clinician,
        "zone": practice.zone,
    }


def main_pages(data) -> list[str]:
    appointment = data["appointment"].pk
    patient = data["patient"].pk
    day = data["appointment"].start.astimezone(data["appointment"].practice.zone)
    date = day.date().isoformat()
    return [
        f"/scheduling/?view=week&date={date}",
        f"/scheduling/?view=day&date={date}",
        f"/scheduling/?view=month&date={date}",
        f"/scheduling/?view=agenda&date={date}",
        f"/scheduling/?view=week&date={date}&clinician=all",
        f"/scheduling/?view=day&date={date}&clinician=all",
        f"/scheduling/?view=month&date={date}&clinician=all",
        "/scheduling/new/",
        f"/scheduling/appointments/{appointment}/",
        f"/scheduling/appointments/{appointment}/edit/",
        "/scheduling/setup/",
        "/scheduling/setup/services/new/",
        "/scheduling/setup/locations/new/",
        "/patients/",
        "/patients/new/",
        f"/patients/{patient}/",
        f"/patients/{patient}/edit/",
        "/settings/",
        "/settings/practice/",
        "/settings/users/",
        "/settings/users/add/",
        f"/settings/users/{data['clinician'].pk}/",
        "/settings/network/",
        "/settings/audit/",
        "/settings/sync/",
        "/settings/sync/admin/",
        "/settings/two-factor/",
        "/settings/teams/",
        "/settings/teams/new/",
        f"/settings/teams/{data['team'].pk}/",
        "/password/change/",
    ]


SIGNED_OUT_PAGES = ["/login/", "/password/reset/", "/password/reset/sent/"]


def text_of(email: Message) -> str:
    """The plain-text part of an email."""
    part = next(p for p in email.walk() if p.get_content_type() == "text/plain")
    return part.get_payload(decode=True).decode()


RESET_LINK = re.compile(r"(https?://\S+/password/reset/\S+/\S+/)")

# A clinician's own view of the same pages: no clinician choice, initials only.
CLINICIAN_PAGES = ["/scheduling/?view=week", "/scheduling/?view=agenda", "/patients/"]


def test_no_page_breaks_a_wcag_rule(
    screen, busy_practice, admin_user, smtp_server, subtests
):
    page = screen
    for path in SIGNED_OUT_PAGES:
        with subtests.test(path=path):
            page.goto(path)
            violations = axe_violations(page)
            assert not violations, f"{path}:\n{readable(violations)}"
    with subtests.test(path="/password/reset/<uid>/<token>/"):
        page.goto("/password/reset/")
        page.get_by_label("Email").fill(admin_user.email)
        page.get_by_role("button").last.click()
        page.wait_for_url("**/password/reset/sent/")
        [email] = smtp_server.messages
        # The link names SITE_URL; the path is the same on the test's server.
        page.goto(urlsplit(RESET_LINK.search(text_of(email)).group(1)).path)
        page.wait_for_url("**/password/reset/*/set-password/")
        violations = axe_violations(page)
        assert not violations, f"{page.url}:\n{readable(violations)}"
    with subtests.test(path="/login/", state="refused"):
        browser_login(page, admin_user.email, "not the password")
        page.get_by_text("do not match").wait_for()
        violations = axe_violations(page)
        assert not violations, f"/login/ (refused):\n{readable(violations)}"
    browser_login(page, admin_user.email)
    page.wait_for_url("**/scheduling/")
    for path in main_pages(busy_practice):
        with subtests.test(path=path):
            page.goto(path)
            assert page.url.endswith(path), f"{path} went to {page.url}"
            violations = axe_violations(page)
            assert not violations, f"{path}:\n{readable(violations)}"
    # Forms as they come back: errors summarised on top, or a conflict to confirm.
    edit = f"/scheduling/appointments/{busy_practice['appointment'].pk}/edit/"
    for path, button in [
        ("/scheduling/new/", "Book"),
        ("/patients/new/", "Add patient"),
        (edit, "Save"),
    ]:
        with subtests.test(path=path, state="sent back"):
            page.goto(path)
            page.get_by_role("button", name=button, exact=True).click()
            page.wait_for_load_state()
            violations = axe_violations(page)
            assert not violations, f"{path} (sent back):\n{readable(violations)}"
    page.get_by_role("button", name="Sign out").click()
    browser_login(page, busy_practice["clinician"].email)
    page.wait_for_url("**/scheduling/")
    day = busy_practice["appointment"].start.astimezone(busy_practice["zone"])
    for path in CLINICIAN_PAGES:
        path += f"&date={day:%Y-%m-%d}" if "?" in path else ""
        with subtests.test(path=path, role="clinician"):
            page.goto(path)
            violations = axe_violations(page)
            assert not violations, f"{path} (clinician):\n{readable(violations)}"


FOCUS_RING = """(element) => {
  const ring = getComputedStyle(element);
  // The ring is drawn on what lies behind it: the element's parent, or the
  // element itself when the ring sits inside it (a negative offset).
  let under = parseFloat(ring.outlineOffset) < 0 ? element : element.parentElement;
  let background = "rgb(255, 255, 255)";
  for (; under; under = under.parentElement) {
    const colour = getComputedStyle(under).backgroundColor;
    if (colour !== "rgba(0, 0, 0, 0)" && colour !== "transparent") {
      background = colour;
      break;
    }
  }
  return {
    focusVisible: element.matches(":focus-visible"),
    style: ring.outlineStyle,
    width: parseFloat(ring.outlineWidth),
    colour: ring.outlineColor,
    background: background,
  };
}"""


def rgb(colour: str) -> tuple[float, float, float]:
    """``rgb(26, 95, 180)`` (or ``rgba(…)`` with full opacity) as three numbers."""
    parts = colour[colour.index("(") + 1 : colour.index(")")].split(",")
    if len(parts) == 4:
        assert float(parts[3]) == 1, f"{colour} is see-through"
    return tuple(float(part) for part in parts[:3])


def luminance(colour: str) -> float:
    """Relative luminance as WCAG 2.2 defines it."""

    def linear(channel: float) -> float:
        channel /= 255
        if channel <= 0.04045:
            return channel / 12.92
        return ((channel + 0.055) / 1.055) ** 2.4

    red, green, blue = (linear(channel) for channel in rgb(colour))
    return 0.2126 * red + 0.7152 * green + 0.0722 * blue


def contrast(first: str, second: str) -> float:
    lighter, darker = sorted((luminance(first), luminance(second)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


def test_contrast_follows_the_wcag_formula():
    assert contrast("rgb(0, 0, 0)", "rgb(255, 255, 255)") == pytest.approx(21)
    assert contrast("rgb(118, 118, 118)", "rgb(255, 255, 255)") == pytest.approx(
        4.54, abs=0.01
    )


FOCUSED = {
    "/login/": ["#id_username", "button[type=submit]", "a[href='/password/reset/']"],
    "/scheduling/?view=week": [
        ".app-header .tab.active",
        ".app-header .tab:not(.active)",
        ".app-header .link-button",
        ".cal-nav a",
        ".cal-views a[aria-current]",
        ".cal-actions a.primary",
        "select[name=clinician]",
        "a.cal-slot",
        "a.cal-entry",
    ],
    "/scheduling/?view=month": ["a.cal-chip", "a.cal-day-num", "a.cal-add"],
    "/settings/users/": [".settings-nav a[aria-current]", ".settings-nav a"],
}


def test_the_focus_ring_stands_out_three_to_one(screen, busy_practice, admin_user):
    page = screen
    width = page.viewport_size["width"]
    date = busy_practice["appointment"].start.astimezone(
        busy_practice["appointment"].practice.zone
    )
    checked, signed_in = [], False
    for path, selectors in FOCUSED.items():
        if path != "/login/" and not signed_in:
            browser_login(page, admin_user.email)
            page.wait_for_url("**/scheduling/")
            signed_in = True
        query = f"&date={date:%Y-%m-%d}&clinician=all" if "?" in path else ""
        page.goto(path + query)
        for selector in selectors:
            element = page.locator(selector).locator("visible=true").first
            element.scroll_into_view_if_needed()
            # A key press first: focus then shows as a keyboard user sees it.
            page.keyboard.press("Shift")
            element.focus()
            ring = element.evaluate(FOCUS_RING)
            where = f"{selector} on {path} at {width} px"
            assert ring["focusVisible"], f"{where} shows no keyboard focus"
            assert ring["style"] not in ("none", "hidden"), f"{where} has no outline"
            assert ring["width"] >= 2, f"{where}: a {ring['width']}px outline"
            ratio = contrast(ring["colour"], ring["background"])
            assert ratio >= 3, (
                f"{where}: outline {ring['colour']} on {ring['background']} "
                f"is {ratio:.2f}:1"
            )
            checked.append(where)
    assert len(checked) > 10
