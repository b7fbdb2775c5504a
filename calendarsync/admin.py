from django.contrib import admin

from calendarsync.models import FeedAccess, FeedFetch, FeedLink


@admin.register(FeedAccess)
class FeedAccessAdmin(admin.ModelAdmin):
    list_display = ["user", "practice", "enabled", "created_at", "reset_at"]
    list_filter = ["enabled", "practice"]
    # The salt is never shown: with the server key it would rebuild links.
    exclude = ["secret_salt"]
    readonly_fields = ["user", "practice", "created_at", "reset_at", "changed_at"]


@admin.register(FeedLink)
class FeedLinkAdmin(admin.ModelAdmin):
    list_display = ["public_id", "scope", "access", "clinician", "created_at"]
    list_filter = ["scope"]
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
class FeedFetchAdmin(admin.ModelAdmin):
    list_display = ["link", "client", "last_fetched_at", "fetch_count", "last_status"]
    list_filter = ["client"]
