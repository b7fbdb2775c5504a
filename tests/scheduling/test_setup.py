"""Services and locations: administrators only, per practice."""

import pytest

from scheduling.models import Location, Service
from tests.scheduling.helpers import main

pytestmark = pytest.mark.django_db


def test_admin_manages_services_and_locations(login, admin_user, practice):
    client = login(admin_user)
    assert client.get("/scheduling/setup/").status_code == 200
    response = client.post(
        "/scheduling/setup/services/new/", {"name": "Intake", "default_minutes": "60"}
    )
    assert response.status_code == 302
    service = Service.objects.get(practice=practice)
    assert str(service) == "Intake, 60 min"
    response = client.post(
        f"/scheduling/setup/services/{service.pk}/",
        {"name": "Intake", "default_minutes": "90"},
    )
    service.refresh_from_db()
    assert (service.default_minutes, service.is_active) == (90, False)
    client.post(
        "/scheduling/setup/locations/new/",
        {"name": "Telehealth", "is_telehealth": "on"},
    )
    assert Location.objects.get().is_telehealth


def test_edit_forms_start_from_current_values(login, admin_user, intake, office):
    client = login(admin_user)
    form = client.get(f"/scheduling/setup/services/{intake.pk}/").context["form"]
    assert form.initial == {"name": "Intake", "default_minutes": 60, "is_active": True}
    url = f"/scheduling/setup/locations/{office.pk}/"
    form = client.get(url).context["form"]
    assert form.initial == {
        "name": office.name,
        "is_telehealth": False,
        "is_active": True,
    }
    response = client.post(url, {"name": "Room  2", "is_active": "on"})
    assert response.status_code == 302
    office.refresh_from_db()
    assert (office.name, office.is_telehealth, office.is_active) == (
        "Room 2",
        False,
        True,
    )
    assert (
        "is_active"
        not in client.get("/scheduling/setup/locations/new/").context["form"].fields
    )


def test_bad_service_input(login, admin_user, practice):
    client = login(admin_user)
    client.post(
        "/scheduling/setup/services/new/", {"name": "Intake", "default_minutes": "60"}
    )
    duplicate = client.post(
        "/scheduling/setup/services/new/", {"name": "intake", "default_minutes": "60"}
    )
    assert "already exists" in duplicate.content.decode()
    too_long = client.post(
        "/scheduling/setup/services/new/",
        {"name": "Marathon", "default_minutes": "1000"},
    )
    assert too_long.context["form"].errors["default_minutes"]
    assert Service.objects.count() == 1


def test_not_for_schedulers_or_clinicians(login, scheduler, clinician, intake, office):
    urls = [
        "/scheduling/setup/",
        "/scheduling/setup/services/new/",
        f"/scheduling/setup/services/{intake.pk}/",
        "/scheduling/setup/locations/new/",
        f"/scheduling/setup/locations/{office.pk}/",
    ]
    for user in (scheduler, clinician):
        client = login(user)
        for url in urls:
            assert client.get(url).status_code == 403, url
            assert client.post(url, {"name": "Taken over"}).status_code == 403, url
    intake.refresh_from_db()
    office.refresh_from_db()
    assert (intake.name, office.name) == ("Intake", "Main Street office")
    assert Service.objects.count() == Location.objects.count() == 1


def test_other_practice_items_are_the_same_404(
    login, admin_user, outsider_service, outsider_location
):
    client = login(admin_user)
    missing = client.get("/scheduling/setup/services/999999/")
    for url in (
        f"/scheduling/setup/services/{outsider_service.pk}/",
        f"/scheduling/setup/locations/{outsider_location.pk}/",
    ):
        response = client.get(url)
        assert response.status_code == 404
        assert main(response) == main(missing)
    html = client.get("/scheduling/setup/").content
    assert b"Harbor" not in html


def test_retired_service_is_not_offered_for_new_bookings(
    login, scheduler, practice, service, intake
):
    from scheduling.services import service_update

    service_update(service=intake, name="Intake", default_minutes=60, is_active=False)
    html = login(scheduler).get("/scheduling/new/").content.decode()
    assert "Psychotherapy, 53 min" in html
    assert "Intake, 60 min" not in html
