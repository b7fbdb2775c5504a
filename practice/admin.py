"""Models as installation operators see them in Django admin (see admin_site.py)."""

from django import forms
from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.contrib.auth.forms import AdminUserCreationForm, UserChangeForm
from django_otp.plugins.otp_static import admin as _static_admin  # noqa: F401
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp import admin as _totp_admin  # noqa: F401
from django_otp.plugins.otp_totp.models import TOTPDevice
from django_otp_webauthn.models import WebAuthnCredential
from django_tasks_db import admin as _task_admin  # noqa: F401 - registered first
from django_tasks_db.models import DBTaskResult

from practice.admin_audit import AuditedModelAdmin
from practice.hooks import user_authority_changed
from practice.models import ROLE_FIELDS, AllowedNetwork, AuditEvent, Practice, User


class AllowedNetworkInline(admin.TabularInline):
    model = AllowedNetwork
    extra = 0


@admin.register(Practice)
class PracticeAdmin(AuditedModelAdmin):
    list_display = ["name", "time_zone", "calendar_sync_enabled", "created_at"]
    search_fields = ["name"]
    inlines = [AllowedNetworkInline]


class OperatorUserCreationForm(AdminUserCreationForm):
    class Meta:
        model = User
        fields = ["email", "display_name", "practice"]

    def clean_practice(self):
        practice = self.cleaned_data.get("practice")
        if practice is None:
            raise forms.ValidationError(
                "Choose the user's practice. Operators are added with "
                "`manage.py createsuperuser`."
            )
        return practice


class OperatorUserChangeForm(UserChangeForm):
    class Meta:
        model = User
        fields = "__all__"


@admin.register(User)
class UserAdmin(AuditedModelAdmin, BaseUserAdmin):
    form = OperatorUserChangeForm
    add_form = OperatorUserCreationForm
    ordering = ["email"]
    list_display = ["email", "display_name", "practice", "is_active", "is_superuser"]
    list_filter = ["practice", "is_active", "is_superuser"]
    search_fields = ["email", "display_name"]
    list_select_related = ["practice"]
    fieldsets = [
        (None, {"fields": ["email", "password"]}),
        ("Person", {"fields": ["display_name", "credentials", "practice"]}),
        ("Roles", {"fields": ["is_practice_admin", "is_scheduler", "is_clinician"]}),
        (
            "Status",
            {"fields": ["is_active", "is_superuser", "is_staff", "date_joined"]},
        ),
    ]
    add_fieldsets = [
        (
            None,
            {
                "classes": ["wide"],
                "fields": [
                    "email",
                    "display_name",
                    "practice",
                    "password1",
                    "password2",
                ],
            },
        )
    ]
    filter_horizontal = []

    def user_change_password(self, request, id, form_url=""):
        response = super().user_change_password(request, id, form_url)
        if request.method == "POST" and response.status_code == 302:
            member = self.get_object(request, id)
            if member is not None:
                self.record_access(
                    request,
                    AuditEvent.Kind.OPERATOR_CHANGED,
                    [member],
                    {"action": "password set", "object": member.pk},
                    counted=False,
                )
        return response

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        authority = {"is_active", "practice", *ROLE_FIELDS.values()}
        if change and authority & set(form.changed_data):
            # As Settings → Users does: links that stopped working stay dead.
            user_authority_changed.send(sender=User, user=obj)


@admin.register(AuditEvent)
class AuditEventAdmin(AuditedModelAdmin):
    """Read-only: the log cannot be changed or deleted, not even here."""

    list_display = [
        "created_at",
        "kind",
        "practice",
        "actor",
        "target_user",
        "client_ip",
        "patient_ids",
    ]
    list_filter = ["kind", "practice"]
    list_select_related = ["practice", "actor", "target_user"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


# The background worker's task results name the addresses emails went to and are
# not audited like practice data; operators read failed tasks in the worker's log.

if admin.site.is_registered(DBTaskResult):
    admin.site.unregister(DBTaskResult)


# Second factors: operators see whose they are and can remove a lost one, never
# their secrets (the libraries' own admins show authenticator keys and QR codes).
for _device_model in (TOTPDevice, StaticDevice):
    if admin.site.is_registered(_device_model):
        admin.site.unregister(_device_model)


class SecondFactorAdmin(AuditedModelAdmin):
    list_display = ["user", "name", "confirmed"]
    list_select_related = ["user"]
    search_fields = ["user__email"]
    fields = ["user", "name", "confirmed"]
    readonly_fields = ["user", "name", "confirmed"]

    def practice_id_of(self, obj):
        return obj.user.practice_id

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


admin.site.register(TOTPDevice, SecondFactorAdmin)
admin.site.register(StaticDevice, SecondFactorAdmin)
admin.site.register(WebAuthnCredential, SecondFactorAdmin)
