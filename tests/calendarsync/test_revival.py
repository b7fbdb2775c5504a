"""A link that stopped working because its owner (or its clinician) was
deactivated or lost a role stays dead when the change is undone: reactivating the
user or giving the role back issues new links, and the old tokens answer 404."""

import pytest

from calendarsync.models import FeedScope
from practice.models import Role, User
from practice.services import user_set_active, user_update
from scheduling.models import Appointment
from tests.factories import (
    feed_links,
    make_appointment,
    make_authenticator,
    make_user,
    personal_feed_path,
)
from tests.support import pass_second_step


@pytest.fixture
def busy(practice, clinician, other_clinician):
    make_appointment(clinician, kind=Appointment.Kind.EVENT, title="Dana's block")
    make_appointment(other_clinician, kind=Appointment.Kind.EVENT, title="Wei's block")


def _set_roles(user, roles, actor):
    user_update(
        user=user,
        display_name=user.display_name,
        credentials=user.credentials,
        roles=roles,
        actor=actor,
        client_ip=None,
    )


def _set_active(user, active, actor):
    user_set_active(user=user, active=active, actor=actor, client_ip=None)


def test_reactivating_a_user_never_revives_their_old_link(
    client, admin_user, clinician, busy
):
    old = personal_feed_path(clinician)
    assert client.get(old).status_code == 200
    _set_active(clinician, False, admin_user)
    _set_active(clinician, True, admin_user)
    assert client.get(old).status_code == 404
    new = personal_feed_path(clinician)
    assert new != old
    assert b"Dana's block" in client.get(new).content
    assert client.get(old).status_code == 404


def test_restoring_the_clinician_role_never_revives_the_old_link(
    client, admin_user, clinician, busy
):
    old = personal_feed_path(clinician)
    assert client.get(old).status_code == 200
    _set_roles(clinician, [Role.SCHEDULER], admin_user)
    _set_roles(clinician, [Role.CLINICIAN], admin_user)
    assert client.get(old).status_code == 404
    new = personal_feed_path(clinician)
    assert new != old
    assert client.get(new).status_code == 200


def test_restoring_the_scheduler_role_never_revives_the_old_links(
    client, admin_user, scheduler, clinician, other_clinician, busy
):
    old = feed_links(scheduler)
    assert {client.get(path).status_code for path in old.values()} == {200}
    _set_roles(scheduler, [Role.CLINICIAN], admin_user)
    _set_roles(scheduler, [Role.SCHEDULER], admin_user)
    new = feed_links(scheduler)
    assert set(new) == set(old)
    for key, path in old.items():
        assert client.get(path).status_code == 404, key
        assert new[key] != path
        assert client.get(new[key]).status_code == 200


def test_a_colleagues_link_to_a_returning_clinician_stays_dead(
    client, admin_user, scheduler, clinician, other_clinician, busy
):
    old = feed_links(scheduler)
    dana = old[(FeedScope.CLINICIAN, clinician.pk)]
    wei = old[(FeedScope.CLINICIAN, other_clinician.pk)]
    practice_wide = old[(FeedScope.PRACTICE, None)]
    _set_active(clinician, False, admin_user)
    _set_active(clinician, True, admin_user)
    assert client.get(dana).status_code == 404
    # Calendars that never stopped keep their links.
    assert client.get(wei).status_code == 200
    assert client.get(practice_wide).status_code == 200
    new = feed_links(scheduler)
    assert new[(FeedScope.CLINICIAN, other_clinician.pk)] == wei
    assert (
        b"Dana's block" in client.get(new[(FeedScope.CLINICIAN, clinician.pk)]).content
    )


def test_a_role_change_that_takes_nothing_away_keeps_every_link(
    client, admin_user, practice, busy
):
    owner = make_user(practice, roles=[Role.ADMINISTRATOR, Role.SCHEDULER])
    before = feed_links(owner)
    _set_roles(owner, [Role.SCHEDULER, Role.ADMINISTRATOR, Role.CLINICIAN], admin_user)
    _set_roles(owner, [Role.SCHEDULER], admin_user)
    after = feed_links(owner)
    for key, path in before.items():
        assert after[key] == path
        assert client.get(path).status_code == 200


def test_an_operator_deactivating_in_django_admin_ends_the_links_too(
    client, admin_user, clinician, busy
):
    old = personal_feed_path(clinician)
    operator = User.objects.create_superuser(
        "ops@tend.example", "ops-password-123", display_name="Operator"
    )
    key = make_authenticator(operator)
    client.force_login(operator)
    pass_second_step(client, key)  # operators always pass a second step
    page = f"/operator/practice/user/{clinician.pk}/change/"
    form = {
        "email": clinician.email,
        "display_name": clinician.display_name,
        "credentials": clinician.credentials,
        "practice": clinician.practice_id,
        "is_clinician": "on",
        "date_joined_0": clinician.date_joined.strftime("%Y-%m-%d"),
        "date_joined_1": clinician.date_joined.strftime("%H:%M:%S"),
    }
    assert client.post(page, form).status_code == 302  # is_active left unticked
    form["is_active"] = "on"
    assert client.post(page, form).status_code == 302
    client.logout()
    clinician.refresh_from_db()
    assert clinician.is_active
    assert client.get(old).status_code == 404
    assert client.get(personal_feed_path(clinician)).status_code == 200
