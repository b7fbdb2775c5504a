from django.urls import path

from calendarsync import views

app_name = "calendarsync"

urlpatterns = [
    path("settings/sync/", views.sync, name="sync"),
    path("settings/sync/admin/", views.admin, name="admin"),
    # The feed: exempt from network restrictions by name ("calendarsync:feed").
    path("calendar/<str:token>.ics", views.feed, name="feed"),
]
