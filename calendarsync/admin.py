from django.contrib import admin

from calendarsync.models import FeedAccess, FeedFetch, FeedLink
from practice.admin_audit import AuditedModelAdmin


@admin.register(FeedAccess)
class FeedAccessAdmin(AuditedModelAdmin):
    list_display = ["user", "practice", "enabled", "created_at", "reset_at"]
    list_filter = ["enabled", "practice"]
    # The salt is never shown: with the server key it would rebuild links.
    exclude = ["secret_salt"]
    readonly_fields = ["user", "practice", "created_at", "reset_at", "changed_at"]


@admin.register(FeedLink)
class FeedLinkAdmin(AuditedModelAdmin):
    list_display = ["public_id", "scope", "access", "clinician", "created_at"]
    list_filter = ["scope"]
    list_select_related = ["access", "clinician"]

    def practice_id_of(self, obj):
        return obj.access.practice_id

    readonly_fields = [
        "access",
        "scope",
        "clinician",
        "public_id",
        "created_at",
        "served_etag",
        "served_last_modified",
    ]


@admin.register(FeedFetch)
class FeedFetchAdmin(AuditedModelAdmin):
    list_display = ["link", "client", "last_fetched_at", "fetch_count", "last_status"]
    list_filter = ["client"]
    list_select_related = ["link__access"]

    def practice_id_of(self, obj):
        return obj.link.access.practice_id
