"""Cache-Control: no-store on every answer to a signed-in user, proved on every route.

The walk fills each route's path converters with real objects and requests it as a
signed-in practice administrator (Tend's pages) or operator (``/operator/``). A route
it does not know how to fill fails the test, so a new page cannot go unchecked.
"""

from urllib.parse import urlsplit

import pytest
from django.contrib.auth.tokens import default_token_generator
from django.contrib.contenttypes.models import ContentType
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from calendarsync import crypto
from calendarsync.models import BusySource, FeedFetch
from practice.models import AuditEvent, Practice, User
from scheduling.models import AppointmentChange
from scheduling.recurrence import WEEKLY, Recurrence
from tests.factories import (
    PASSWORD,
    connect_calendar_account_to,
    make_appointment,
    make_authenticator,
    make_busy_calendar,
    make_location,
    make_patient,
    make_recovery_codes,
    make_service,
    make_team,
    personal_feed_path,
)
from tests.support import pass_second_step

# Views that say how they may be cached themselves, and what they say.
OWN_CACHE_CONTROL = {"calendarsync:feed": "private, no-cache"}
# Answer 404 by design: no model of Tend has a page outside the admin, and the
# admin's catch-all is there to answer 404 to a signed-in operator.
NOT_FOUND_EXPECTED = {"admin:view_on_site", "operator/(?P<url>.*)$"}
# Signing out from the walk would end it; their GET (405) is still checked.
NEVER_POSTED = {"logout", "admin:logout", "practice:sign_out_everywhere"}

# Every model the operator's Django admin lists: each gets the same five pages.
ADMIN_MODELS = {
    "auth_group",
    "axes_accessattempt",
    "axes_accesslog",
    "axes_accessfailurelog",
    "practice_practice",
    "practice_user",
    "practice_auditevent",
    "scheduling_service",
    "scheduling_location",
    "scheduling_patient",
    "scheduling_series",
    "scheduling_appointment",
    "scheduling_appointmentchange",
    "calendarsync_feedaccess",
    "calendarsync_feedlink",
    "calendarsync_feedfetch",
    "otp_totp_totpdevice",
    "otp_static_staticdevice",
    "django_otp_webauthn_webauthncredential",
}
ADMIN_PAGES = ("changelist", "add", "history", "delete", "change")


def all_routes(patterns=None, prefix="", namespace=None):
    """(name, route) of every URL pattern; an unnamed route is known by its route."""
    if patterns is None:
        patterns = get_resolver().url_patterns
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            inner = namespace
            if pattern.namespace:
                inner = (
                    f"{namespace}:{pattern.namespace}"
                    if namespace
                    else (pattern.namespace)
                )
            yield from all_routes(
                pattern.url_patterns, prefix + str(pattern.pattern), inner
            )
        else:
            assert isinstance(pattern, URLPattern)
            route = prefix + str(pattern.pattern)
            if pattern.name is None:
                yield route, route
            else:
                name = f"{namespace}:{pattern.name}" if namespace else pattern.name
                yield name, route


@pytest.fixture
def world(client, practice, admin_user, clinician, radicale):
    """One of everything a route can name, made as Tend makes it."""
    patient = make_patient(practice, first_name="Ada", last_name="Okafor")
    service = make_service(practice)
    location = make_location(practice)
    appointment = make_appointment(
        clinician,
        patients=[patient],
        service=service,
        location=location,
        recurrence=Recurrence(frequency=WEEKLY, count=2),
        actor=admin_user,
    )
    # Connected calendar accounts: the clinician's, for the page that disconnects
    # it, and the administrator's own, for the one that resumes sending.
    for owner in (clinician, admin_user):
        connect_calendar_account_to(owner, radicale)
    feed_path = personal_feed_path(admin_user)
    assert client.get(feed_path).status_code == 200  # a fetch, for the admin's list
    operator = User.objects.create_superuser(
        "ops@tend.example", PASSWORD, display_name="Ops"
    )
    # Operators always pass a second step before Django admin.
    operator_key = make_authenticator(operator)
    make_recovery_codes(operator)
    team = make_team(practice, name="Adults", members=[clinician])
    # A personal calendar read as busy time, for its refresh and remove routes (on
    # loopback's discard port: a refresh fails at once and keeps it).
    busy_source = BusySource.objects.create(
        practice=practice,
        owner=admin_user,
        calendar=make_busy_calendar(admin_user, name="Family"),
        kind=BusySource.Kind.ICS,
        secret_url=crypto.encrypt("http://127.0.0.1:9/basic.ics"),
        address_hint="127.0.0.1:9/…",
    )
    return {
        "busy_source": busy_source,
        "team": team,
        "operator_key": operator_key,
        "practice": practice,
        "admin_user": admin_user,
        "clinician": clinician,
        "patient": patient,
        "service": service,
        "location": location,
        "appointment": appointment,
        "feed_token": urlsplit(feed_path).path.rsplit("/", 1)[1].removesuffix(".ics"),
        "operator": operator,
    }


def app_paths(world) -> dict[str, str]:
    """The path to request for each of Tend's own routes."""
    member = world["clinician"].pk
    appointment = world["appointment"].pk
    patient = world["patient"].pk
    admin_user = world["admin_user"]
    return {
        "calendarsync:feed": reverse(
            "calendarsync:feed", kwargs={"token": world["feed_token"]}
        ),
        "calendarsync:sync": reverse("calendarsync:sync"),
        "calendarsync:sync_action": reverse("calendarsync:sync_action"),
        "calendarsync:email_link": reverse("calendarsync:email_link"),
        "calendarsync:busy_link_action": reverse("calendarsync:busy_link_action"),
        "calendarsync:admin": reverse("calendarsync:admin"),
        "calendarsync:account_connect": reverse("calendarsync:account_connect"),
        "calendarsync:account_calendar": reverse("calendarsync:account_calendar"),
        "calendarsync:account_resume": reverse("calendarsync:account_resume"),
        "calendarsync:account_password": reverse("calendarsync:account_password"),
        "calendarsync:change_notices": reverse("calendarsync:change_notices"),
        "calendarsync:busy_add": reverse("calendarsync:busy_add"),
        "calendarsync:busy_account": reverse("calendarsync:busy_account"),
        # Refreshed before it is removed.
        "calendarsync:busy_refresh": reverse(
            "calendarsync:busy_refresh", args=[world["busy_source"].pk]
        ),
        "calendarsync:busy_remove": reverse(
            "calendarsync:busy_remove", args=[world["busy_source"].pk]
        ),
        "calendarsync:account_disconnect": reverse(
            "calendarsync:account_disconnect", kwargs={"user_id": member}
        ),
        "calendarsync:admin_practice": reverse("calendarsync:admin_practice"),
        "calendarsync:admin_member": reverse(
            "calendarsync:admin_member", kwargs={"user_id": member}
        ),
        "home": reverse("home"),
        "healthz": reverse("healthz"),
        "robots_txt": reverse("robots_txt"),
        "login": reverse("login"),
        "logout": reverse("logout"),
        "password_change": reverse("password_change"),
        "password_reset": reverse("password_reset"),
        "password_reset_done": reverse("password_reset_done"),
        "password_reset_confirm": reverse(
            "password_reset_confirm",
            kwargs={
                "uidb64": urlsafe_base64_encode(force_bytes(admin_user.pk)),
                "token": default_token_generator.make_token(admin_user),
            },
        ),
        "password_reset_complete": reverse("password_reset_complete"),
        "practice:settings": reverse("practice:settings"),
        "practice:settings_practice": reverse("practice:settings_practice"),
        "practice:users": reverse("practice:users"),
        "practice:user_add": reverse("practice:user_add"),
        "practice:user_edit": reverse("practice:user_edit", args=[member]),
        "practice:user_active": reverse("practice:user_active", args=[member]),
        "practice:user_sign_out": reverse("practice:user_sign_out", args=[member]),
        "practice:sign_out_everywhere": reverse("practice:sign_out_everywhere"),
        "practice:settings_network": reverse("practice:settings_network"),
        "practice:audit_log": reverse("practice:audit_log"),
        "practice:audit_export": reverse("practice:audit_export"),
        "scheduling:calendar": reverse("scheduling:calendar"),
        "scheduling:appointment_new": reverse("scheduling:appointment_new"),
        "scheduling:appointment": reverse("scheduling:appointment", args=[appointment]),
        "scheduling:appointment_edit": reverse(
            "scheduling:appointment_edit", args=[appointment]
        ),
        "scheduling:appointment_status": reverse(
            "scheduling:appointment_status", args=[appointment]
        ),
        "scheduling:appointment_delete": reverse(
            "scheduling:appointment_delete", args=[appointment]
        ),
        "scheduling:setup": reverse("scheduling:setup"),
        "scheduling:service_add": reverse("scheduling:service_add"),
        "scheduling:service_edit": reverse(
            "scheduling:service_edit", args=[world["service"].pk]
        ),
        "scheduling:location_add": reverse("scheduling:location_add"),
        "scheduling:location_edit": reverse(
            "scheduling:location_edit", args=[world["location"].pk]
        ),
        "scheduling:settings_teams": reverse("scheduling:settings_teams"),
        "scheduling:settings_team_add": reverse("scheduling:settings_team_add"),
        "scheduling:settings_team_edit": reverse(
            "scheduling:settings_team_edit", args=[world["team"].pk]
        ),
        "scheduling:settings_team_delete": reverse(
            "scheduling:settings_team_delete", args=[world["team"].pk]
        ),
        "scheduling:patients": reverse("scheduling:patients"),
        "scheduling:patient_add": reverse("scheduling:patient_add"),
        "scheduling:patient": reverse("scheduling:patient", args=[patient]),
        "scheduling:patient_edit": reverse("scheduling:patient_edit", args=[patient]),
        "scheduling:patient_active": reverse(
            "scheduling:patient_active", args=[patient]
        ),
        "practice:user_two_factor_reset": reverse(
            "practice:user_two_factor_reset", args=[member]
        ),
        "two_factor_verify": reverse("two_factor_verify"),
        "reauth": reverse("reauth"),
        "two_factor": reverse("two_factor"),
        "two_factor_authenticator": reverse("two_factor_authenticator"),
        "two_factor_recovery_codes": reverse("two_factor_recovery_codes"),
        "two_factor_remove": reverse("two_factor_remove"),
        **{
            f"otp_webauthn:{name}": reverse(f"otp_webauthn:{name}")
            for name in (
                "credential-registration-begin",
                "credential-registration-complete",
                "credential-authentication-begin",
                "credential-authentication-complete",
                "js-i18n-catalog",
            )
        },
    }


def admin_object_ids(world) -> dict[str, str]:
    """A real object for each admin model where Tend makes one; the others (groups,
    and failure logs, which Tend does not keep) are asked for an id that is not
    there, which the admin answers too."""
    appointment = world["appointment"]
    feed_link = world["admin_user"].feed_access.links.first()
    fetch = FeedFetch.objects.filter(link=feed_link).first()
    ids = {
        "practice_practice": world["practice"].pk,
        "practice_user": world["clinician"].pk,
        "practice_auditevent": AuditEvent.objects.filter(practice=world["practice"])
        .first()
        .pk,
        "scheduling_service": world["service"].pk,
        "scheduling_location": world["location"].pk,
        "scheduling_patient": world["patient"].pk,
        "scheduling_series": appointment.series_id,
        "scheduling_appointment": appointment.pk,
        "scheduling_appointmentchange": AppointmentChange.objects.filter(
            appointment=appointment
        )
        .first()
        .pk,
        "calendarsync_feedaccess": feed_link.access_id,
        "calendarsync_feedlink": feed_link.pk,
        "calendarsync_feedfetch": fetch.pk if fetch else None,
        "otp_totp_totpdevice": TOTPDevice.objects.get(user=world["operator"]).pk,
        "otp_static_staticdevice": StaticDevice.objects.get(user=world["operator"]).pk,
    }
    return {model: str(ids.get(model) or 999999) for model in ADMIN_MODELS}


def admin_paths(world) -> dict[str, str]:
    """The path to request for each route of the operator's Django admin."""
    ids = admin_object_ids(world)
    paths = {
        "admin:index": reverse("admin:index"),
        "admin:login": reverse("admin:login"),
        "admin:logout": reverse("admin:logout"),
        "admin:password_change": reverse("admin:password_change"),
        "admin:password_change_done": reverse("admin:password_change_done"),
        "admin:autocomplete": reverse("admin:autocomplete"),
        "admin:jsi18n": reverse("admin:jsi18n"),
        "admin:view_on_site": reverse(
            "admin:view_on_site",
            args=[ContentType.objects.get_for_model(Practice).pk, world["practice"].pk],
        ),
        "admin:app_list": reverse("admin:app_list", args=["practice"]),
        "admin:auth_user_password_change": reverse(
            "admin:auth_user_password_change", args=[world["clinician"].pk]
        ),
        # The admin's catch-all, and its bare object URL that redirects to "change".
        "operator/(?P<url>.*)$": "/operator/no-such-page/",
    }
    for model in ADMIN_MODELS:
        app_label, model_name = model.rsplit("_", 1)  # app labels may hold "_"
        for page in ADMIN_PAGES:
            name = f"admin:{model}_{page}"
            args = [] if page in ("changelist", "add") else [ids[model]]
            paths[name] = reverse(name, args=args)
        bare = f"operator/{app_label}/{model_name}/<path:object_id>/"
        paths[bare] = f"/operator/{app_label}/{model_name}/{ids[model]}/"
    return paths


def assert_no_store(name, method, response):
    cache_control = response.get("Cache-Control", "")
    if name in OWN_CACHE_CONTROL:
        assert cache_control == OWN_CACHE_CONTROL[name], name
        return
    assert response.status_code < 500, (name, method, response.status_code)
    if name not in NOT_FOUND_EXPECTED:
        assert response.status_code != 404, (name, method, "fill it with a real object")
    assert "no-store" in cache_control.split(", "), (name, method, cache_control)


def walk(client, paths):
    for name, path in paths.items():
        response = client.get(path)
        assert_no_store(name, "GET", response)
        if response.status_code == 405 and name not in NEVER_POSTED:
            # A form's target: an empty form is refused and nothing changes.
            assert_no_store(name, "POST", client.post(path, {}))


def test_the_walk_knows_every_route(world):
    """A new route fails here until the walk below knows how to request it."""
    known = set(app_paths(world)) | set(admin_paths(world))
    routes = dict(all_routes())
    assert len(routes) == len(list(all_routes())), "two routes share a name"
    assert set(routes) - known == set(), "teach the walk these routes"
    assert known - set(routes) == set(), "the walk names routes that are gone"


def test_every_page_for_a_signed_in_administrator_is_no_store(client, world):
    client.force_login(
        world["admin_user"], backend="django.contrib.auth.backends.ModelBackend"
    )
    walk(client, app_paths(world))


def test_every_operator_page_is_no_store(client, world):
    client.force_login(
        world["operator"], backend="django.contrib.auth.backends.ModelBackend"
    )
    pass_second_step(client, world["operator_key"])
    walk(client, admin_paths(world))


def test_signed_out_pages_are_left_to_their_views(client, world):
    """Anonymous answers carry no one's data: the middleware leaves them alone."""
    response = client.get(reverse("robots_txt"))
    assert response.status_code == 200
    assert not response.has_header("Cache-Control")
    feed = client.get(app_paths(world)["calendarsync:feed"])
    assert feed["Cache-Control"] == "private, no-cache"
