from django.urls import path

from calendarsync import busy_views, views

app_name = "calendarsync"

urlpatterns = [
    # The feed, first: the most requested URL by far. Exempt from network
    # restrictions by name ("calendarsync:feed").
    path("calendar/<str:token>.ics", views.feed, name="feed"),
    path("settings/sync/", views.sync, name="sync"),
    path("settings/sync/access/", views.sync_action, name="sync_action"),
    path("settings/sync/email/", views.email_link, name="email_link"),
    path("settings/sync/busy/", views.busy_link_action, name="busy_link_action"),
    path("settings/sync/account/", views.account_connect, name="account_connect"),
    path(
        "settings/sync/account/calendar/",
        views.account_calendar,
        name="account_calendar",
    ),
    path(
        "settings/sync/account/password/",
        views.account_password,
        name="account_password",
    ),
    path(
        "settings/sync/account/resume/",
        views.account_resume,
        name="account_resume",
    ),
    path(
        "settings/sync/account/<int:user_id>/disconnect/",
        views.account_disconnect,
        name="account_disconnect",
    ),
    path("settings/sync/notices/", views.change_notices, name="change_notices"),
    path("settings/sync/busy-time/", busy_views.busy_add_address, name="busy_add"),
    path(
        "settings/sync/busy-time/account/",
        busy_views.busy_account_calendars,
        name="busy_account",
    ),
    path(
        "settings/sync/busy-time/<int:source_id>/refresh/",
        busy_views.busy_refresh,
        name="busy_refresh",
    ),
    path(
        "settings/sync/busy-time/<int:source_id>/remove/",
        busy_views.busy_remove,
        name="busy_remove",
    ),
    path("settings/sync/admin/", views.admin, name="admin"),
    path("settings/sync/admin/practice/", views.admin_practice, name="admin_practice"),
    path(
        "settings/sync/admin/users/<int:user_id>/",
        views.admin_member,
        name="admin_member",
    ),
]
