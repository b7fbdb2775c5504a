from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from practice import views as practice_views

# Any exception no view handled; a database outage answers 503, never 500.
handler500 = "practice.views.server_error"

urlpatterns = [
    # First: it holds the calendar feed, which subscribers poll all day.
    path("", include("calendarsync.urls")),
    path("", practice_views.home, name="home"),
    path("healthz", practice_views.healthz, name="healthz"),
    path("robots.txt", practice_views.robots_txt, name="robots_txt"),
    path("login/", practice_views.LoginView.as_view(), name="login"),
    path("logout/", practice_views.logout_view, name="logout"),
    path(
        "password/change/",
        practice_views.PasswordChangeView.as_view(success_url="/"),
        name="password_change",
    ),
    path(
        "password/reset/",
        practice_views.PasswordResetView.as_view(),
        name="password_reset",
    ),
    path(
        "password/reset/sent/",
        auth_views.PasswordResetDoneView.as_view(),
        name="password_reset_done",
    ),
    path(
        "password/reset/<uidb64>/<token>/",
        practice_views.PasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    path(
        "password/reset/complete/",
        auth_views.PasswordResetCompleteView.as_view(),
        name="password_reset_complete",
    ),
    path("settings/", include("practice.urls")),
    path("", include("scheduling.urls")),
    path("operator/", admin.site.urls),
]
