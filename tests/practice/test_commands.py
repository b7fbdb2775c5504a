"""Management commands: createpractice and the demo loader seed_demo."""

import io

import pytest
from django.core import mail
from django.core.management import CommandError, call_command

from practice.demo import DEMO_PASSWORD
from practice.models import Practice, Role, User

RIVERSIDE = {
    "admin@riverside.test": [Role.ADMINISTRATOR, Role.CLINICIAN],
    "scheduler@riverside.test": [Role.SCHEDULER],
    "rivera@riverside.test": [Role.CLINICIAN],
    "chen@riverside.test": [Role.CLINICIAN],
    "okafor@riverside.test": [Role.CLINICIAN],
}
HARBOR = {
    "admin@harbor.test": [Role.ADMINISTRATOR, Role.CLINICIAN],
    "lee@harbor.test": [Role.CLINICIAN],
}


def createpractice(*args):
    out = io.StringIO()
    call_command("createpractice", *args, stdout=out)
    return out.getvalue()


def test_createpractice_creates_practice_and_administrator(db):
    output = createpractice(
        "Lakeside Therapy",
        "--time-zone",
        "Europe/Dublin",
        "--admin-email",
        "Owner@Lakeside.test",
        "--admin-name",
        "Aoife Byrne",
        "--clinician",
        "--password",
        "a-strong-passphrase-1",
    )
    practice = Practice.objects.get(name="Lakeside Therapy")
    assert practice.time_zone == "Europe/Dublin"
    owner = User.objects.get(email="owner@lakeside.test")
    assert owner.practice == practice
    assert owner.roles == [Role.ADMINISTRATOR, Role.CLINICIAN]
    assert owner.check_password("a-strong-passphrase-1")
    assert not owner.is_staff and not owner.is_superuser
    assert "Created Lakeside Therapy (Europe/Dublin)" in output


def test_createpractice_can_invite_instead_of_setting_a_password(
    db, settings, django_capture_on_commit_callbacks
):
    settings.SITE_URL = "https://tend.example.com"
    with django_capture_on_commit_callbacks(execute=True):
        createpractice(
            "Lakeside Therapy",
            "--admin-email",
            "owner@lakeside.test",
            "--admin-name",
            "A B",
            "--invite",
        )
    owner = User.objects.get(email="owner@lakeside.test")
    assert owner.roles == [Role.ADMINISTRATOR]
    assert not owner.has_usable_password()
    [invite] = mail.outbox
    assert "https://tend.example.com/password/reset/" in invite.body


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--time-zone", "Mars/Base"], "is not a known time zone"),
        (["--admin-email", "not-an-address"], "Enter a valid email address."),
        (["--admin-email", "rivera@riverside.test"], "can't be added"),
        (["--password", "123"], "This password is too short."),
    ],
    ids=["unknown-zone", "bad-email", "duplicate-email", "weak-password"],
)
def test_createpractice_refuses_bad_input_and_saves_nothing(clinician, args, message):
    defaults = {
        "--admin-email": "owner@lakeside.test",
        "--password": "a-strong-passphrase-1",
        "--time-zone": "UTC",
    }
    for flag, value in zip(args[::2], args[1::2], strict=True):
        defaults[flag] = value
    argv = ["Lakeside Therapy", "--admin-name", "Owner"]
    for flag, value in defaults.items():
        argv += [flag, value]
    practices, users = Practice.objects.count(), User.objects.count()
    with pytest.raises(CommandError, match=message):
        createpractice(*argv)
    assert (Practice.objects.count(), User.objects.count()) == (practices, users)


def test_seed_demo_loads_both_practices_idempotently(db, client):
    call_command("seed_demo", stdout=io.StringIO())
    call_command("seed_demo", stdout=io.StringIO())
    riverside = Practice.objects.get(name="Riverside Counseling")
    harbor = Practice.objects.get(name="Harbor Family Therapy")
    assert riverside.time_zone == "America/New_York"
    assert Practice.objects.filter(name="Riverside Counseling").count() == 1
    for practice, people in ((riverside, RIVERSIDE), (harbor, HARBOR)):
        assert set(practice.users.values_list("email", flat=True)) == set(people)
        for email, roles in people.items():
            user = User.objects.get(email=email)
            assert user.roles == roles, email
            assert user.check_password(DEMO_PASSWORD)
    assert User.objects.get(email="rivera@riverside.test").label == "Dana Rivera, LCSW"
    response = client.post(
        "/login/", {"username": "admin@riverside.test", "password": DEMO_PASSWORD}
    )
    assert response.status_code == 302


def test_seed_demo_keeps_a_changed_password(db):
    call_command("seed_demo", stdout=io.StringIO())
    user = User.objects.get(email="chen@riverside.test")
    # What the password change form does (no service of Tend's own).
    user.set_password("chens-own-secret")
    user.save()
    call_command("seed_demo", stdout=io.StringIO())
    user.refresh_from_db()
    assert user.check_password("chens-own-secret")


@pytest.mark.parametrize(
    "production",
    [{"DEMO_DATA_ALLOWED": False}, {"SECURE_SSL_REDIRECT": True}],
    ids=["demo-data-off", "https-redirects-on"],
)
def test_seed_demo_refuses_a_production_configuration(db, settings, production):
    for name, value in production.items():
        setattr(settings, name, value)
    with pytest.raises(CommandError, match="Refusing to load demo data"):
        call_command("seed_demo", stdout=io.StringIO())
    assert not Practice.objects.exists()
    assert not User.objects.exists()


def test_seed_demo_refuses_production_environment_in_a_real_process(tmp_path):
    """`make run`'s loader, run with production environment variables."""
    from tests.practice.test_deploy import production_env, run

    env = production_env(DATABASE_URL=f"sqlite:///{tmp_path / 'prod.sqlite3'}")
    migrate = run(["manage.py", "migrate", "--noinput", "-v", "0"], env)
    assert migrate.returncode == 0, migrate.stderr
    result = run(["manage.py", "seed_demo"], env)
    assert result.returncode != 0
    assert "Refusing to load demo data" in result.stderr
