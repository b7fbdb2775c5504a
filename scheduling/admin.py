"""Django admin for installation operators (superusers). Practice staff never see it;
they use the SCHEDULING and Patients tabs, which go through the services. Operators
get read-only views so that the feed contract (sequence, soft deletion) holds."""

from django.contrib import admin

from practice.admin_audit import AuditedModelAdmin
from scheduling.models import (
    Appointment,
    AppointmentChange,
    Location,
    Patient,
    Series,
    Service,
)


class ReadOnlyAdmin(AuditedModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Service)
class ServiceAdmin(ReadOnlyAdmin):
    list_display = ["name", "default_minutes", "practice", "is_active"]
    list_filter = ["practice"]


@admin.register(Location)
class LocationAdmin(ReadOnlyAdmin):
    list_display = ["name", "is_telehealth", "practice", "is_active"]
    list_filter = ["practice"]


@admin.register(Patient)
class PatientAdmin(ReadOnlyAdmin):
    list_display = ["pk", "initials", "practice", "is_active"]
    list_filter = ["practice"]
    # Operators support the installation; they do not browse patient details.
    fields = ["practice", "is_active", "created_at"]

    def patient_ids_of(self, obj):
        return [obj.pk]


@admin.register(Series)
class SeriesAdmin(ReadOnlyAdmin):
    list_display = ["pk", "frequency", "interval", "count", "until", "practice"]


@admin.register(Appointment)
class AppointmentAdmin(ReadOnlyAdmin):
    list_display = [
        "uid",
        "practice",
        "clinician",
        "kind",
        "start",
        "status",
        "sequence",
        "deleted_at",
    ]
    list_filter = ["practice", "status", "kind"]
    fields = [
        "uid",
        "practice",
        "clinician",
        "kind",
        "start",
        "end",
        "status",
        "series",
        "sequence",
        "updated_at",
        "deleted_at",
    ]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("patients")

    def patient_ids_of(self, obj):
        return [patient.pk for patient in obj.patients.all()]


@admin.register(AppointmentChange)
class AppointmentChangeAdmin(ReadOnlyAdmin):
    list_display = ["appointment", "action", "actor", "created_at"]
    fields = ["appointment", "action", "actor", "created_at"]
    list_select_related = ["appointment", "actor"]

    def practice_id_of(self, obj):
        return obj.appointment.practice_id
