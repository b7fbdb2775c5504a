"""Installation operators use Django admin at /operator/; practice staff never can."""

import pytest
from django.db import IntegrityError, transaction

from practice.models import Role, User
from tests.factories import make_authenticator, make_practice, make_user
from tests.support import pass_second_step


@pytest.fixture
def operator(db):
    operator = User.objects.create_superuser(
        "ops@tend.example", "ops-password-123", display_name="Operator"
    )
    operator.authenticator_key = make_authenticator(operator)
    return operator


def operator_signs_in(client, operator) -> None:
    """Operators always pass a second step before Django admin."""
    client.force_login(operator)
    pass_second_step(client, operator.authenticator_key)


def test_operator_uses_django_admin(client, operator, admin_user):
    operator_signs_in(client, operator)
    assert client.get("/operator/").status_code == 200
    assert client.get("/operator/practice/practice/").status_code == 200
    users = client.get("/operator/practice/user/")
    assert users.status_code == 200
    assert admin_user.email.encode() in users.content
    assert client.get("/operator/practice/auditevent/").status_code == 200
    assert client.get("/operator/practice/user/add/").status_code == 200


@pytest.mark.parametrize("who", ["admin_user", "scheduler", "clinician"])
def test_practice_staff_never_reach_django_admin(client, request, who):
    member = request.getfixturevalue(who)
    client.force_login(member)
    for path in ("/operator/", "/operator/practice/user/"):
        response = client.get(path)
        assert response.status_code == 302, path
        assert response["Location"].startswith("/operator/login/")


def test_practice_staff_cannot_sign_in_to_django_admin(client, admin_user):
    response = client.post(
        "/operator/login/?next=/operator/",
        {"username": admin_user.email, "password": "correct-horse-battery"},
    )
    assert response.status_code == 200
    assert "_auth_user_id" not in client.session


def test_even_a_flagged_practice_user_is_kept_out(admin_user, operator):
    """Should staff flags ever reach a practice user, the site still refuses."""
    from django.contrib import admin
    from django.test import RequestFactory

    request = RequestFactory().get("/operator/")
    admin_user.is_staff = admin_user.is_superuser = True  # in memory only
    request.user = admin_user
    assert not admin.site.has_permission(request)
    request.user = operator
    assert not admin.site.has_permission(request), "no second step passed"
    operator.is_verified = lambda: True  # in memory: as OTPMiddleware sets it
    assert admin.site.has_permission(request)


@pytest.mark.parametrize(
    "flags",
    [
        {"is_staff": True},
        {"is_superuser": True},
        {"is_superuser": True, "is_staff": True},
    ],
)
def test_database_forbids_staff_flags_on_practice_users(practice, flags):
    # Straight to the table: the services never write such a row; the database
    # must refuse it even so.
    with pytest.raises(IntegrityError), transaction.atomic():
        User.objects.create(
            email="x@riverside.test",
            display_name="X",
            practice=practice,
            is_clinician=True,
            **flags,
        )


def test_database_requires_a_practice_for_non_operators(db):
    # Straight to the table, as above.
    with pytest.raises(IntegrityError), transaction.atomic():
        User.objects.create(email="loose@example.test", display_name="Loose")


def test_database_refuses_duplicate_email_in_any_case(practice):
    make_user(practice, roles=[Role.CLINICIAN], email="dup@riverside.test")
    other = make_practice(name="Other", time_zone="UTC")
    # Straight to the table: user_create refuses the duplicate before the database.
    with pytest.raises(IntegrityError), transaction.atomic():
        User.objects.create(
            email="DUP@riverside.test", display_name="Dup", practice=other
        )


def test_operator_adds_a_practice_user_through_admin(client, operator, practice):
    operator_signs_in(client, operator)
    response = client.post(
        "/operator/practice/user/add/",
        {
            "email": "new@riverside.test",
            "display_name": "New Person",
            "practice": practice.pk,
            "password1": "a-strong-passphrase-1",
            "password2": "a-strong-passphrase-1",
            "usable_password": "true",
        },
    )
    assert response.status_code == 302, response.content.decode()[-2000:]
    user = User.objects.get(email="new@riverside.test")
    assert user.practice == practice
    assert user.check_password("a-strong-passphrase-1")
    assert not user.is_staff and not user.is_superuser


def test_admin_form_refuses_a_user_without_a_practice(client, operator):
    operator_signs_in(client, operator)
    response = client.post(
        "/operator/practice/user/add/",
        {
            "email": "loose@example.test",
            "display_name": "Loose",
            "password1": "a-strong-passphrase-1",
            "password2": "a-strong-passphrase-1",
            "usable_password": "true",
        },
    )
    assert response.status_code == 200
    assert b"Choose the user&#x27;s practice." in response.content
    assert not User.objects.filter(email="loose@example.test").exists()


def test_admin_change_form_refuses_staff_flags_on_a_practice_user(operator, clinician):
    from django.contrib import admin
    from django.test import RequestFactory

    request = RequestFactory().get("/operator/")
    request.user = operator
    model_admin = admin.site._registry[User]
    form_class = model_admin.get_form(request, clinician, change=True)
    data = {
        "email": clinician.email,
        "display_name": clinician.display_name,
        "credentials": clinician.credentials,
        "practice": clinician.practice_id,
        "is_clinician": "on",
        "is_active": "on",
        "is_staff": "on",
        "date_joined_0": "2026-01-01",
        "date_joined_1": "09:00:00",
    }
    form = form_class(data, instance=clinician)
    assert not form.is_valid()
    assert "can never be staff or superusers" in str(form.errors)
    clinician.refresh_from_db()
    assert not clinician.is_staff
