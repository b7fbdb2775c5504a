import sys

from django.contrib import messages
from django.contrib.auth import logout, update_session_auth_hash
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import PasswordResetForm
from django.contrib.auth.signals import user_login_failed
from django.core.exceptions import ValidationError
from django.core.paginator import Page
from django.http import HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views import defaults
from django.views.decorators.http import (
    require_GET,
    require_http_methods,
    require_POST,
)

from practice.export import audit_csv_lines
from practice.forms import (
    ActiveForm,
    AuditFilterForm,
    LoginForm,
    NetworksForm,
    PasswordChangeForm,
    PracticeForm,
    SetPasswordForm,
    UserCreateForm,
    UserForm,
    practice_form_initial,
)
from practice.models import AuditEvent, Role
from practice.net import address_allowed, client_ip
from practice.permissions import (
    access_user_by_id,
    practice_user_required,
    reauth_required,
    role_required,
)
from practice.selectors import (
    AuditEntry,
    audit_event_list,
    audit_log_page,
    practice_allowed_cidrs,
    user_list_with_calendar_state,
)
from practice.services import (
    audit_record,
    networks_set,
    password_reset_request,
    practice_update,
    user_create,
    user_sessions_end,
    user_set_active,
    user_update,
)
from practice.twofactor.services import factors_reset, user_factors
from practice.unavailable import (
    RETRY_AFTER_SECONDS,
    caused_by_database,
    database_ping,
    unavailable_response,
)


class LoginView(auth_views.LoginView):
    form_class = LoginForm
    redirect_authenticated_user = True

    def get(self, request, *args, **kwargs):
        # Nobody can sign in without the database: say so (503) before anyone
        # types a password, rather than after.
        database_ping()
        return super().get(request, *args, **kwargs)

    def form_valid(self, form):
        user = form.get_user()
        address = client_ip(self.request)
        if user.practice_id and not address_allowed(
            address, practice_allowed_cidrs(practice_id=user.practice_id)
        ):
            # From outside the practice's networks the right password gets exactly
            # what a wrong one gets: the same page, and one more failure towards the
            # lockout. A different answer would confirm the password to whoever
            # guessed it from anywhere. Only the audit log says what happened.
            audit_record(
                kind=AuditEvent.Kind.NETWORK_BLOCKED,
                practice=user.practice,
                target_user=user,
                client_ip=address,
                details={"where": "login"},
            )
            user_login_failed.send(
                sender=__name__,
                credentials={"username": form.cleaned_data["username"]},
                request=self.request,
            )
            form.add_error(None, form.get_invalid_login_error())
            return self.form_invalid(form)
        return super().form_valid(form)


class PasswordResetView(auth_views.PasswordResetView):
    form_class = PasswordResetForm

    def form_valid(self, form):
        # The same answer whether or not the address has an account; the link in
        # the email is built from SITE_URL, never from the Host header.
        password_reset_request(
            email=form.cleaned_data["email"], client_ip=client_ip(self.request)
        )
        return redirect(self.get_success_url())


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    form_class = SetPasswordForm

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        account = self.user
        if context.get("validlink") and account is not None:
            # The page names Tend and the practice: an invitation (no password
            # yet) reads "Set your password", a reset "Choose a new password".
            context["account_practice"] = account.practice
            context["inviting"] = not account.has_usable_password()
        return context

    def form_valid(self, form):
        response = super().form_valid(form)
        audit_record(
            kind=AuditEvent.Kind.PASSWORD_CHANGED,
            practice=form.user.practice,
            actor=form.user,
            client_ip=client_ip(self.request),
            details={"through": "emailed link"},
        )
        return response


class PasswordChangeView(auth_views.PasswordChangeView):
    form_class = PasswordChangeForm

    def form_valid(self, form):
        response = super().form_valid(form)
        audit_record(
            kind=AuditEvent.Kind.PASSWORD_CHANGED,
            practice=self.request.user.practice,
            actor=self.request.user,
            client_ip=client_ip(self.request),
        )
        update_session_auth_hash(self.request, form.user)
        messages.success(self.request, "Your password has been changed.")
        return response


@require_POST
def logout_view(request):
    logout(request)
    return redirect("login")


SIGNED_OUT_EVERYWHERE = "You were signed out on every device, this one included."


@require_POST
@login_required
def sign_out_everywhere(request):
    """End every session of the signed-in user, this one included."""
    user_sessions_end(
        user=request.user, actor=request.user, client_ip=client_ip(request)
    )
    logout(request)
    messages.success(request, SIGNED_OUT_EVERYWHERE)
    return redirect("login")


@require_GET
def healthz(request):
    try:
        database_ping()
    except Exception:  # noqa: BLE001 - any database failure means unhealthy
        response = JsonResponse({"status": "unavailable"}, status=503)
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response
    return JsonResponse({"status": "ok"})


def server_error(request):
    """Django's handler500: every exception no view handled ends here, including
    those raised in middleware. One from the database (an outage) is a 503 page
    with Retry-After; anything else is a 500."""
    if caused_by_database(sys.exception()):
        return unavailable_response()
    return defaults.server_error(request)


@require_GET
def robots_txt(request):
    return HttpResponse(
        "User-agent: *\nDisallow: /calendar/\nDisallow: /settings/\n",
        content_type="text/plain; charset=utf-8",
    )


@login_required
def home(request):
    if request.user.practice_id is None:
        # Installation operators have no practice; their place is Django admin.
        return redirect("admin:index")
    return redirect("scheduling:calendar")


@practice_user_required
def settings_index(request):
    return render(request, "practice/settings_index.html", {"section": "index"})


def _changes_two_factor_requirement(request) -> bool:
    """Only switching the two-factor requirement needs a recent confirmation."""
    if request.method != "POST":
        return False
    wanted = PracticeForm.base_fields["two_factor_required"].clean(
        request.POST.get("two_factor_required")
    )
    return wanted != request.user.practice.two_factor_required


@role_required(Role.ADMINISTRATOR)
@reauth_required(when=_changes_two_factor_requirement)
def practice_settings(request):
    practice = request.user.practice
    form = PracticeForm(request.POST or None, initial=practice_form_initial(practice))
    if request.method == "POST" and form.is_valid():
        try:
            practice_update(
                practice=practice,
                actor=request.user,
                client_ip=client_ip(request),
                **form.cleaned_data,
            )
        except ValidationError as error:
            form.add_error(None, error)
        else:
            messages.success(request, "Practice settings saved.")
            return redirect("practice:settings_practice")
    return render(
        request,
        "practice/settings_practice.html",
        {"form": form, "section": "practice"},
    )


@role_required(Role.ADMINISTRATOR)
def users(request):
    return render(
        request,
        "practice/settings_users.html",
        {
            "users": user_list_with_calendar_state(practice=request.user.practice),
            "section": "users",
        },
    )


@role_required(Role.ADMINISTRATOR)
def user_add(request):
    form = UserCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            user = user_create(
                practice=request.user.practice,
                actor=request.user,
                client_ip=client_ip(request),
                **form.cleaned_data,
            )
        except ValidationError as error:
            form.add_error(None, error)
        else:
            messages.success(
                request,
                f"{user.label} was added. An email with a link to choose a password "
                "is on its way; the link works for one hour, after which they can "
                "use “Forgot your password?” on the sign-in page.",
            )
            return redirect("practice:users")
    return render(
        request,
        "practice/user_form.html",
        {"form": form, "section": "users", "adding": True},
    )


@role_required(Role.ADMINISTRATOR)
@reauth_required()
def user_edit(request, user_id: int):
    member = access_user_by_id(request.user, user_id)
    initial = {
        "display_name": member.display_name,
        "credentials": member.credentials,
        "roles": [role.value for role in member.roles],
    }
    form = UserForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            user_update(
                user=member,
                actor=request.user,
                client_ip=client_ip(request),
                **form.cleaned_data,
            )
        except ValidationError as error:
            form.add_error(None, error)
        else:
            messages.success(request, f"{member.label} was saved.")
            return redirect("practice:users")
    return render(
        request,
        "practice/user_form.html",
        {
            "form": form,
            "member": member,
            "member_two_factor": user_factors(user=member).enabled,
            "section": "users",
        },
    )


@require_http_methods(["GET", "POST"])
@role_required(Role.ADMINISTRATOR)
def user_active(request, user_id: int):
    """Deactivate (after a confirmation page, GET) or reactivate a colleague."""
    member = access_user_by_id(request.user, user_id)
    if request.method == "GET":
        return render(
            request,
            "practice/user_deactivate.html",
            {"member": member, "section": "users"},
        )
    form = ActiveForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose Deactivate or Reactivate.")
        return redirect("practice:users")
    active = form.cleaned_data["active"]
    try:
        user_set_active(
            user=member, active=active, actor=request.user, client_ip=client_ip(request)
        )
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        verb = "reactivated" if active else "deactivated"
        messages.success(request, f"{member.label} was {verb}.")
    return redirect("practice:users")


@require_POST
@role_required(Role.ADMINISTRATOR)
def user_sign_out(request, user_id: int):
    member = access_user_by_id(request.user, user_id)
    user_sessions_end(user=member, actor=request.user, client_ip=client_ip(request))
    if member.pk == request.user.pk:
        logout(request)
        messages.success(request, SIGNED_OUT_EVERYWHERE)
        return redirect("login")
    messages.success(request, f"{member.label} was signed out on every device.")
    return redirect("practice:user_edit", user_id=member.pk)


@require_POST
@role_required(Role.ADMINISTRATOR)
@reauth_required(
    return_to=lambda user_id: reverse("practice:user_edit", args=[user_id])
)
def user_two_factor_reset(request, user_id: int):
    """Turn a colleague's two-factor sign-in off (they lost their phone)."""
    member = access_user_by_id(request.user, user_id)
    try:
        factors_reset(user=member, actor=request.user, client_ip=client_ip(request))
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(
            request,
            f"Two-factor sign-in is off for {member.label}; they can set it up "
            "again in Settings.",
        )
    return redirect("practice:user_edit", user_id=member.pk)


@role_required(Role.ADMINISTRATOR)
@reauth_required()
def network_settings(request):
    practice = request.user.practice
    current = practice_allowed_cidrs(practice_id=practice.pk)
    address = client_ip(request)
    form = NetworksForm(request.POST or None, initial={"networks": "\n".join(current)})
    if request.method == "POST" and form.is_valid():
        try:
            networks_set(
                practice=practice,
                cidrs=form.cleaned_data["networks"],
                actor=request.user,
                client_ip=address,
            )
        except ValidationError as error:
            form.add_error("networks", error)
        else:
            messages.success(request, "Network restrictions saved.")
            return redirect("practice:settings_network")
    return render(
        request,
        "practice/settings_network.html",
        {
            "form": form,
            "current": current,
            "client_address": address,
            "section": "network",
        },
    )


AUDIT_PAGE_SIZE = 50


def _audit_filter_form(request) -> tuple[AuditFilterForm, str]:
    """The filter form and its query string; "page" belongs to the pager."""
    query = request.GET.copy()
    query.pop("page", None)
    form = AuditFilterForm(query or None, practice=request.user.practice)
    return form, query.urlencode()


@role_required(Role.ADMINISTRATOR)
def audit_log(request):
    practice = request.user.practice
    form, filter_query = _audit_filter_form(request)
    page: Page | None = None
    entries: list[AuditEntry] = []
    if not form.is_bound or form.is_valid():
        page, entries = audit_log_page(
            practice=practice,
            audit_filter=form.audit_filter() if form.is_bound else None,
            page_number=request.GET.get("page"),
            per_page=AUDIT_PAGE_SIZE,
        )
    return render(
        request,
        "practice/settings_audit.html",
        {
            "form": form,
            "page": page,
            "entries": entries,
            "filter_query": filter_query,
            "section": "audit",
        },
        status=200 if page is not None else 400,
    )


@role_required(Role.ADMINISTRATOR)
def audit_export(request):
    """The filtered log as CSV; bad filters go back to the page with the message."""
    practice = request.user.practice
    form, filter_query = _audit_filter_form(request)
    if form.is_bound and not form.is_valid():
        return audit_log(request)
    audit_filter = form.audit_filter() if form.is_bound else None
    audit_record(
        kind=AuditEvent.Kind.AUDIT_EXPORTED,
        practice=practice,
        actor=request.user,
        client_ip=client_ip(request),
        details={"filter": filter_query or "none"},
    )
    events = audit_event_list(practice=practice, audit_filter=audit_filter)
    stamp = timezone.localtime(timezone.now(), practice.zone).strftime("%Y%m%d-%H%M")
    response = StreamingHttpResponse(
        audit_csv_lines(practice=practice, events=events.iterator(chunk_size=2000)),
        content_type="text/csv; charset=utf-8",
    )
    response["Content-Disposition"] = f'attachment; filename="audit-log-{stamp}.csv"'
    return response
