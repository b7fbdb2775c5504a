import gzip
import logging
import re
from datetime import datetime

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db import DatabaseError
from django.http import Http404, HttpResponse, HttpResponseNotAllowed
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.utils.http import http_date, parse_http_date_safe
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from calendarsync import accounts, busylinks, notices, pushstop, services
from calendarsync import feed as feeds
from calendarsync.accounts import calendar_account_calendars
from calendarsync.busy_views import busy_context
from calendarsync.clients import client_family
from calendarsync.forms import (
    BusyLinkActionForm,
    ChangeNoticesForm,
    ChooseCalendarForm,
    ConnectAccountForm,
    DisconnectAccountForm,
    EmailLinkForm,
    MemberActionForm,
    PracticeSyncForm,
    ReplacePasswordForm,
)
from calendarsync.freshness import window_count
from calendarsync.models import PROVIDER_PRESETS, CalendarAccount
from calendarsync.permissions import (
    access_calendar_account_to_disconnect,
    access_own_calendar_account,
    access_own_feed_link,
)
from calendarsync.selectors import (
    calendar_account_state,
    calendar_accounts_overview,
    feed_access_overview,
)
from practice.models import Role
from practice.net import client_ip
from practice.permissions import (
    access_user_by_id,
    practice_user_required,
    reauth_required,
    role_required,
)
from practice.unavailable import RETRY_AFTER_SECONDS

logger = logging.getLogger("calendarsync.feed")

FEED_CONTENT_TYPE = "text/calendar; charset=utf-8"
# Unknown links tolerated from one address per window before it gets 429s.
MISSES_ALLOWED = 30
MISS_WINDOW_SECONDS = 600
GZIP_ACCEPTED = re.compile(r"\bgzip\b(?!\s*;\s*q=0(?:\.0*)?\s*(?:,|$))", re.IGNORECASE)

# Per action: the service, the message for one's own access, and the start of the
# message for an administrator acting on another user.
ACTIONS = {
    "reset": (
        services.feed_access_reset,
        "New links were issued; the old ones no longer work.",
        "New links were issued for",
    ),
    "disable": (
        services.feed_access_disable,
        "Calendar sync is now off.",
        "Calendar sync is off for",
    ),
    "enable": (
        services.feed_access_enable,
        "Calendar sync is on again, with new links.",
        "Calendar sync is on again for",
    ),
}


@never_cache
@practice_user_required
def sync(request):
    """Settings → Sync Calendars with Other Applications."""
    return _sync_page(request)


def _sync_page(
    request,
    *,
    form: ConnectAccountForm | None = None,
    status=200,
    busy_form=None,
    password_form: ReplacePasswordForm | None = None,
):
    user = request.user
    access, links = services.feed_links_issue(user=user)
    return render(
        request,
        "calendarsync/sync.html",
        {
            "section": "sync",
            "links": links,
            "access": access,
            "practice_sync_on": user.practice.calendar_sync_enabled,
            "personal": [item for item in links if item.link.scope == "personal"],
            "clinicians": [item for item in links if item.link.scope == "clinician"],
            "practice_wide": [item for item in links if item.link.scope == "practice"],
            "busy": [item for item in links if item.link.scope == "busy"],
            **_account_context(user, form=form, password_form=password_form),
            "change_notices_on": notices.change_notices_enabled(user=user),
            **busy_context(user, form=busy_form),
        },
        status=status,
    )


def _account_context(
    user,
    *,
    form: ConnectAccountForm | None,
    password_form: ReplacePasswordForm | None = None,
) -> dict:
    """The "Send to your calendar account" section of the sync page."""
    account = access_own_calendar_account(user)
    context: dict = {
        "account": account,
        "account_form": form or ConnectAccountForm(),
        "password_form": password_form or ReplacePasswordForm(),
        "presets": [
            (value, label, PROVIDER_PRESETS[CalendarAccount.Provider(value)])
            for value, label in CalendarAccount.Provider.choices
        ],
    }
    if account is not None:
        context["account_state"] = calendar_account_state(account, now=timezone.now())
        context["password_help"] = PROVIDER_PRESETS[
            CalendarAccount.Provider(account.provider)
        ].password_help
        if not account.calendar_url:
            try:
                context["account_calendars"] = calendar_account_calendars(account)
            except ValidationError as error:
                context["account_calendars_error"] = " ".join(error.messages)
    return context


@require_POST
@practice_user_required
def account_connect(request):
    """Connect the signed-in user's calendar account (discovery first)."""
    form = ConnectAccountForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            accounts.calendar_account_connect(
                user=request.user,
                provider=data["provider"],
                server_url=data["server_url"],
                username=data["username"],
                password=data["password"],
                actor=request.user,
                client_ip=client_ip(request),
            )
        except ValidationError as error:
            form.add_error(None, error)
        else:
            messages.success(
                request,
                "Your calendar account is connected. Now choose the calendar Tend "
                "writes into.",
            )
            return redirect(reverse("calendarsync:sync") + "#account")
    return _sync_page(request, form=form, status=400)


@require_POST
@practice_user_required
def account_calendar(request):
    """Create Tend's own calendar in the account, or use an empty one."""
    account = access_own_calendar_account(request.user)
    form = ChooseCalendarForm(request.POST)
    if account is None or not form.is_valid():
        messages.error(request, "Connect a calendar account first.")
        return redirect(reverse("calendarsync:sync") + "#account")
    chosen = form.cleaned_data["calendar"]
    try:
        accounts.calendar_account_use_calendar(
            account=account, calendar_url=None if chosen == "new" else chosen
        )
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, "Tend now sends your schedule to that calendar.")
    return redirect(reverse("calendarsync:sync") + "#account")


@require_POST
@practice_user_required
def account_password(request):
    """Replace the app password of the signed-in user's own calendar account,
    once the server accepts the new one. Nobody else's: administrators may
    disconnect an account but never see or set its password."""
    account = access_own_calendar_account(request.user)
    if account is None:
        raise Http404
    form = ReplacePasswordForm(request.POST)
    if form.is_valid():
        try:
            accounts.calendar_account_password_replace(
                account=account,
                password=form.cleaned_data["password"],
                actor=request.user,
                client_ip=client_ip(request),
            )
        except ValidationError as error:
            form.add_error("password", error)
        else:
            messages.success(
                request,
                "The server accepted the new app password. Tend saved it and "
                "sends your schedule with it.",
            )
            return redirect(reverse("calendarsync:sync") + "#account")
    return _sync_page(request, password_form=form, status=400)


@require_POST
@practice_user_required
def account_resume(request):
    """Send to the signed-in user's calendar account again after Reset Access
    paused it."""
    account = access_own_calendar_account(request.user)
    if account is None:
        raise Http404
    pushstop.calendar_account_resume(
        account=account, actor=request.user, client_ip=client_ip(request)
    )
    messages.success(
        request, "Tend sends your schedule to your calendar account again."
    )
    return redirect(reverse("calendarsync:sync") + "#account")


@require_POST
@practice_user_required
def account_disconnect(request, user_id: int):
    """Disconnect a calendar account: one's own, or (administrators) anyone's in
    the practice."""
    account = access_calendar_account_to_disconnect(request.user, user_id)
    form = DisconnectAccountForm(request.POST)
    form.is_valid()
    outcome = accounts.calendar_account_disconnect(
        account=account,
        actor=request.user,
        client_ip=client_ip(request),
        delete_calendar=form.cleaned_data.get("delete_calendar", False),
    )
    if account.user_id == request.user.pk:
        messages.success(request, f"Your calendar account is disconnected. {outcome}")
        return redirect(reverse("calendarsync:sync") + "#account")
    messages.success(
        request,
        f"The calendar account of {account.user.label} is disconnected. {outcome}",
    )
    return redirect(reverse("calendarsync:admin") + "#accounts")


@require_POST
@practice_user_required
def sync_action(request):
    """Reset, disable or enable the signed-in user's own access."""
    form = MemberActionForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose Reset, Disable or Enable.")
        return redirect("calendarsync:sync")
    service, done, _for_member = ACTIONS[form.cleaned_data["action"]]
    service(user=request.user, actor=request.user, client_ip=client_ip(request))
    messages.success(request, done)
    return redirect("calendarsync:sync")


# Per action on the busy-only link: the service and the message.
BUSY_ACTIONS = {
    "enable": (
        busylinks.busy_link_enable,
        "Your busy-only link is ready. Share it only with people who may see when "
        "you are busy.",
    ),
    "reset": (
        busylinks.busy_link_reset,
        "Your busy-only link was replaced; the old one no longer works. Your other "
        "links did not change.",
    ),
    "disable": (
        busylinks.busy_link_disable,
        "Your busy-only link is off and no longer works. Your other links did not "
        "change.",
    ),
}


@require_POST
@practice_user_required
def busy_link_action(request):
    """Make, reset or turn off the signed-in clinician's busy-only link."""
    form = BusyLinkActionForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose Make, Reset or Disable.")
        return redirect(reverse("calendarsync:sync") + "#busy")
    service, done = BUSY_ACTIONS[form.cleaned_data["action"]]
    try:
        service(user=request.user, client_ip=client_ip(request))
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, done)
    return redirect(reverse("calendarsync:sync") + "#busy")


@require_POST
@practice_user_required
def email_link(request):
    """Email one of the user's links to their own address."""
    form = EmailLinkForm(request.POST)
    if not form.is_valid():
        messages.error(request, "That calendar link no longer exists; reload the page.")
        return redirect("calendarsync:sync")
    link = access_own_feed_link(request.user, form.cleaned_data["link"])
    try:
        services.feed_link_email(
            user=request.user, link=link, client_ip=client_ip(request)
        )
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, f"The link is on its way to {request.user.email}.")
    return redirect("calendarsync:sync")


@require_POST
@practice_user_required
def change_notices(request):
    """Turn the signed-in user's change notices by email on or off."""
    form = ChangeNoticesForm(request.POST)
    back = reverse("calendarsync:sync") + "#change-notices"
    if not form.is_valid():
        messages.error(request, " ".join(str(e) for e in form.errors["notices"]))
        return redirect(back)
    enabled = form.cleaned_data["notices"] == "on"
    try:
        notices.change_notices_set(user=request.user, enabled=enabled)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(
            request,
            f"Change notices are on: Tend emails {request.user.email} when "
            "something in the next 48 hours is booked, moved or cancelled."
            if enabled
            else "Change notices are off: Tend no longer emails you about changes.",
        )
    return redirect(back)


@never_cache
@role_required(Role.ADMINISTRATOR)
def admin(request):
    """Settings → Calendar sync: every user's sync state, and the practice switch."""
    practice = request.user.practice
    calendar_accounts = [
        (account, calendar_account_state(account, now=timezone.now(), own=False))
        for account in calendar_accounts_overview(practice=practice)
    ]
    return render(
        request,
        "calendarsync/admin.html",
        {
            "section": "sync_admin",
            "members": feed_access_overview(practice=practice),
            "practice_sync_on": practice.calendar_sync_enabled,
            "calendar_accounts": calendar_accounts,
            "accounts_needing_attention": sum(
                1 for account, _state in calendar_accounts if account.needs_attention
            ),
        },
    )


@require_POST
@role_required(Role.ADMINISTRATOR)
def admin_member(request, user_id: int):
    """Reset, disable or enable one user's access."""
    member = access_user_by_id(request.user, user_id)
    form = MemberActionForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose Reset, Disable or Enable.")
        return redirect("calendarsync:admin")
    service, _done, for_member = ACTIONS[form.cleaned_data["action"]]
    service(user=member, actor=request.user, client_ip=client_ip(request))
    messages.success(request, f"{for_member} {member.label}.")
    return redirect("calendarsync:admin")


@require_POST
@role_required(Role.ADMINISTRATOR)
@reauth_required(return_to="calendarsync:admin")
def admin_practice(request):
    """Switch calendar sync on or off for the whole practice."""
    form = PracticeSyncForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose On or Off.")
        return redirect("calendarsync:admin")
    enabled = form.cleaned_data["enabled"]
    services.practice_sync_set(
        practice=request.user.practice,
        enabled=enabled,
        actor=request.user,
        client_ip=client_ip(request),
    )
    messages.success(
        request,
        "Calendar sync is on for the practice."
        if enabled
        else "Calendar sync is off for the whole practice: every calendar link "
        "stops working.",
    )
    return redirect("calendarsync:admin")


# The feed ---------------------------------------------------------------------


def _feed_headers(response: HttpResponse) -> HttpResponse:
    response["Cache-Control"] = "private, no-cache"
    response["Referrer-Policy"] = "no-referrer"
    response["X-Robots-Tag"] = "noindex"
    response["X-Content-Type-Options"] = "nosniff"
    return response


def feed_not_found() -> HttpResponse:
    """The one answer for every link that does not open a calendar, whatever the
    reason, so a caller learns nothing from it."""
    response = HttpResponse(
        b"Not found\n", status=404, content_type="text/plain; charset=utf-8"
    )
    return _feed_headers(response)


def feed_unavailable() -> HttpResponse:
    """A temporary failure: clients keep what they have and try again later. Never a
    200 with a partial calendar, which they would take as cancellations."""
    response = HttpResponse(
        b"Temporarily unavailable\n",
        status=503,
        content_type="text/plain; charset=utf-8",
    )
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return _feed_headers(response)


def feed_refused(request) -> HttpResponse:
    """404 for a link that opens nothing; once one address has sent too many of
    those in a short time, 429 instead. Only failures count, so valid links polled
    from one shared address (Google fetches many feeds from a few) never slow down."""
    key = f"misses:{client_ip(request) or 'unknown'}"
    misses = window_count(key, seconds=MISS_WINDOW_SECONDS)
    if misses <= MISSES_ALLOWED:
        return feed_not_found()
    response = HttpResponse(
        b"Too many requests\n", status=429, content_type="text/plain; charset=utf-8"
    )
    response["Retry-After"] = str(MISS_WINDOW_SECONDS)
    return _feed_headers(response)


def _gzip_accepted(request) -> bool:
    return bool(GZIP_ACCEPTED.search(request.META.get("HTTP_ACCEPT_ENCODING", "")))


def _gzip_etag(etag: str) -> str:
    return etag[:-1] + '-gzip"'


def _opaque(tag: str) -> str:
    """An entity tag without its weakness mark: If-None-Match compares weakly
    (RFC 9110, 13.1.2), so W/"x" matches "x"."""
    tag = tag.strip()
    return tag[2:] if tag[:2] in ("W/", "w/") else tag


def _not_modified(request, etag: str, last_modified: datetime) -> bool:
    """Whether the client already holds the bytes last served (``etag``)."""
    if_none_match = request.META.get("HTTP_IF_NONE_MATCH")
    if if_none_match is not None:
        candidates = {_opaque(tag) for tag in if_none_match.split(",")}
        return "*" in candidates or bool(candidates & {etag, _gzip_etag(etag)})
    since = parse_http_date_safe(request.META.get("HTTP_IF_MODIFIED_SINCE", ""))
    # Only the very date we last served proves the client holds these bytes (iOS
    # sends it back). Any other date may come from a client's own, possibly fast,
    # clock: "later than our Last-Modified" would then earn a 304 for bytes it
    # never had and freeze its calendar, so such a request gets the full feed.
    return since is not None and int(last_modified.timestamp()) == since


@csrf_exempt
def feed(request, token):
    """One subscribed calendar, read-only, for GET and HEAD only.

    What to send is ``feed.feed_answer``'s; this adds the HTTP: 404/429 for
    refused links, 503 when the database fails, gzip when accepted, and the
    conditional-request headers."""
    if request.method not in ("GET", "HEAD"):
        return _feed_headers(HttpResponseNotAllowed(["GET", "HEAD"]))
    family = client_family(request.META.get("HTTP_USER_AGENT", ""))
    try:
        answer = feeds.feed_answer(
            token=token,
            now=timezone.now(),
            family=family,
            client_holds=lambda etag, last_modified: _not_modified(
                request, etag, last_modified
            ),
        )
    except Http404:
        return feed_refused(request)
    except DatabaseError:
        logger.warning("Calendar feed unavailable: database error")
        return feed_unavailable()
    status, etag = answer.status, answer.etag

    try:
        services.feed_fetch_record(
            link_id=answer.link_id,
            public_id=answer.public_id,
            link=answer.link,
            tallied=answer.tallied,
            family=family,
            address=client_ip(request),
            status=status,
        )
    except DatabaseError:
        # Knowing who polled is a nicety; the calendar is already built.
        logger.warning("Could not record a calendar fetch: database error")

    use_gzip = _gzip_accepted(request)
    if status == 304:
        # No body and no Content-Length: a 304 describes the stored response.
        response = HttpResponse(status=304)
        del response["Content-Type"]
    else:
        gzipped = answer.gzipped
        body = gzipped if use_gzip else gzip.decompress(gzipped)
        response = HttpResponse(
            b"" if request.method == "HEAD" else body, content_type=FEED_CONTENT_TYPE
        )
        if use_gzip:
            response["Content-Encoding"] = "gzip"
        response["Content-Length"] = str(len(body))
    response["ETag"] = _gzip_etag(etag) if use_gzip else etag
    response["Last-Modified"] = http_date(answer.last_modified.timestamp())
    patch_vary_headers(response, ["Accept-Encoding"])
    return _feed_headers(response)
