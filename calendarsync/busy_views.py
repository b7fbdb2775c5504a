"""Settings → Sync: "Personal calendars as busy time" (``_busy_sources.html``).

Adding a calendar reads it at once (``busy_sources``): the form answers with what
went wrong, or the calendar is listed with its busy time already counted."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from calendarsync import busy_sources
from calendarsync.accounts import calendar_account_calendars
from calendarsync.forms import BusyAccountCalendarForm, BusyAddressForm
from calendarsync.permissions import access_own_busy_source, access_own_calendar_account
from calendarsync.selectors import busy_source_state, busy_sources_of
from practice.models import Role
from practice.permissions import practice_user_required, role_required

SECTION = "#busy-time"


def _back():
    return redirect(reverse("calendarsync:sync") + SECTION)


def _added(request, source):
    count = source.busy_count
    messages.success(
        request,
        f"“{source.calendar.name}” is read as busy time: {count} busy time"
        f"{'' if count == 1 else 's'} in the next 90 days.",
    )
    return _back()


def busy_context(user, *, form: BusyAddressForm | None = None) -> dict:
    """What the section needs: the user's calendars with their state in words,
    the address form, and whether a calendar account can be chosen from."""
    now = timezone.now()
    sources = busy_sources_of(user=user)
    account = access_own_calendar_account(user) if user.is_clinician else None
    return {
        "busy_sources": [
            (source, busy_source_state(source, now=now)) for source in sources
        ],
        "busy_form": form or BusyAddressForm(),
        "busy_account": account,
        "busy_show": user.is_clinician or bool(sources),
    }


@require_POST
@role_required(Role.CLINICIAN)
def busy_add_address(request):
    """Add a secret iCalendar address (read once before it is saved)."""
    from calendarsync.views import _sync_page

    form = BusyAddressForm(request.POST)
    if form.is_valid():
        try:
            source = busy_sources.busy_source_add_ics(
                user=request.user,
                url=form.cleaned_data["url"],
                name=form.cleaned_data["name"],
            )
        except ValidationError as error:
            form.add_error("url", error)
        else:
            return _added(request, source)
    return _sync_page(request, busy_form=form, status=400)


@never_cache
@role_required(Role.CLINICIAN)
def busy_account_calendars(request):
    """Choose a calendar of the connected account to read as busy time."""
    account = access_own_calendar_account(request.user)
    if account is None:
        messages.error(request, busy_sources.NO_ACCOUNT)
        return _back()
    error = ""
    calendars = []
    if request.method == "POST":
        form = BusyAccountCalendarForm(request.POST)
        if form.is_valid():
            try:
                source = busy_sources.busy_source_add_caldav(
                    user=request.user,
                    calendar_url=form.cleaned_data["calendar"],
                    name=form.cleaned_data["name"],
                )
            except ValidationError as refused:
                error = " ".join(refused.messages)
            else:
                return _added(request, source)
        else:
            error = "Choose a calendar."
    try:
        calendars = [
            calendar
            for calendar in calendar_account_calendars(account)
            if not busy_sources.is_tend_calendar(account, calendar.url)
        ]
    except ValidationError as refused:
        error = error or " ".join(refused.messages)
    return render(
        request,
        "calendarsync/busy_account.html",
        {
            "section": "sync",
            "account": account,
            "calendars": calendars,
            "error": error,
        },
        status=400 if error and request.method == "POST" else 200,
    )


@require_POST
@role_required(Role.CLINICIAN)
def busy_refresh(request, source_id: int):
    """Read one of the user's calendars again now (in the worker)."""
    source = access_own_busy_source(request.user, source_id)
    busy_sources.busy_read_request([source.pk], now_over_later=True)
    messages.success(
        request,
        f"“{source.calendar.name}” is being read again; its state below shows "
        "the result.",
    )
    return _back()


@require_POST
@practice_user_required
def busy_remove(request, source_id: int):
    """Forget one of the user's calendars and its busy time."""
    source = access_own_busy_source(request.user, source_id)
    name = source.calendar.name
    busy_sources.busy_source_remove(source=source)
    messages.success(
        request, f"“{name}” was removed; Tend no longer keeps its busy time."
    )
    return _back()
