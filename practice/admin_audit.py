"""Operators' access to practice data at /operator/, recorded in each practice's
audit log. Every ModelAdmin of the operator site derives from ``AuditedModelAdmin``
(a test walks the registry), so no model of practice data is browsed unrecorded."""

from collections import Counter, defaultdict

from django.contrib import admin
from django.db.models import Model

from practice.models import AuditEvent, Practice
from practice.net import client_ip
from practice.services import operator_access_record


class AuditedModelAdmin(admin.ModelAdmin):
    """Records each list page, change page, save and deletion an operator makes:
    one event per practice whose rows were on the page, in one INSERT."""

    def practice_id_of(self, obj: Model) -> int | None:
        """The practice whose data ``obj`` is (None: no practice's)."""
        if isinstance(obj, Practice):
            return obj.pk
        return getattr(obj, "practice_id", None)

    def patient_ids_of(self, obj: Model) -> list[int]:
        """The patients ``obj`` is about, for the log's patient filter."""
        return []

    def record_access(
        self, request, kind: str, rows: list, details: dict, counted: bool
    ) -> None:
        """One event per practice of ``rows``, all in one INSERT."""
        seen: dict[int | None, set[int]] = defaultdict(set)
        counts: Counter[int | None] = Counter()
        for row in rows:
            practice_id = self.practice_id_of(row)
            seen[practice_id].update(self.patient_ids_of(row))
            counts[practice_id] += 1
        if not seen:
            return
        operator_access_record(
            operator=request.user,
            kind=kind,
            client_ip=client_ip(request),
            details={"what": str(self.model._meta.verbose_name_plural), **details},
            seen=seen,
            count_rows=counts if counted else None,
        )

    def changelist_view(self, request, extra_context=None):
        response = super().changelist_view(request, extra_context)
        changelist = (getattr(response, "context_data", None) or {}).get("cl")
        if changelist is not None:
            self.record_access(
                request,
                AuditEvent.Kind.OPERATOR_VIEWED,
                list(changelist.result_list),
                {"page": "list"},
                counted=True,
            )
        return response

    def change_view(self, request, object_id, form_url="", extra_context=None):
        response = super().change_view(request, object_id, form_url, extra_context)
        shown = (getattr(response, "context_data", None) or {}).get("original")
        if shown is not None and request.method == "GET":
            self.record_access(
                request,
                AuditEvent.Kind.OPERATOR_VIEWED,
                [shown],
                {"page": "details", "object": shown.pk},
                counted=False,
            )
        return response

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        self.record_access(
            request,
            AuditEvent.Kind.OPERATOR_CHANGED,
            [obj],
            {
                "action": "changed" if change else "added",
                "object": obj.pk,
                "fields": sorted(form.changed_data),
            },
            counted=False,
        )

    def delete_model(self, request, obj):
        self.record_access(
            request,
            AuditEvent.Kind.OPERATOR_CHANGED,
            [obj],
            {"action": "deleted", "object": obj.pk},
            counted=False,
        )
        super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        self.record_access(
            request,
            AuditEvent.Kind.OPERATOR_CHANGED,
            list(queryset),
            {"action": "deleted"},
            counted=True,
        )
        super().delete_queryset(request, queryset)
