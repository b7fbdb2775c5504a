from django.urls import path

from scheduling import views

app_name = "scheduling"

# Names of Patients-tab pages start with "patient": the shell highlights that tab.
urlpatterns = [
    path("scheduling/", views.calendar, name="calendar"),
    path("scheduling/new/", views.appointment_new, name="appointment_new"),
    path(
        "scheduling/appointments/<int:appointment_id>/",
        views.appointment_detail,
        name="appointment",
    ),
    path(
        "scheduling/appointments/<int:appointment_id>/edit/",
        views.appointment_edit,
        name="appointment_edit",
    ),
    path(
        "scheduling/appointments/<int:appointment_id>/status/",
        views.appointment_status,
        name="appointment_status",
    ),
    path(
        "scheduling/appointments/<int:appointment_id>/delete/",
        views.appointment_delete_view,
        name="appointment_delete",
    ),
    path("scheduling/setup/", views.setup, name="setup"),
    path("scheduling/setup/services/new/", views.service_add, name="service_add"),
    path(
        "scheduling/setup/services/<int:service_id>/",
        views.service_edit,
        name="service_edit",
    ),
    path("scheduling/setup/locations/new/", views.location_add, name="location_add"),
    path(
        "scheduling/setup/locations/<int:location_id>/",
        views.location_edit,
        name="location_edit",
    ),
    # Settings → Teams: url names start with "settings" so the shell shows Settings.
    path("settings/teams/", views.settings_teams, name="settings_teams"),
    path("settings/teams/new/", views.settings_team_add, name="settings_team_add"),
    path(
        "settings/teams/<int:team_id>/",
        views.settings_team_edit,
        name="settings_team_edit",
    ),
    path(
        "settings/teams/<int:team_id>/delete/",
        views.settings_team_delete,
        name="settings_team_delete",
    ),
    path("patients/", views.patients, name="patients"),
    path("patients/new/", views.patient_add, name="patient_add"),
    path("patients/<int:patient_id>/", views.patient_detail, name="patient"),
    path("patients/<int:patient_id>/edit/", views.patient_edit, name="patient_edit"),
    path(
        "patients/<int:patient_id>/active/", views.patient_active, name="patient_active"
    ),
]
