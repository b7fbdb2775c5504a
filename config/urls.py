from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from practice import views as practice_views
from practice.twofactor import views as two_factor_views

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
    path("login/verify/", two_factor_views.verify, name="two_factor_verify"),
    path("login/confirm/", two_factor_views.reauth, name="reauth"),
    path("settings/two-factor/", two_factor_views.manage, name="two_factor"),
    path(
        "settings/two-factor/authenticator/",
        two_factor_views.authenticator_add,
        name="two_factor_authenticator",
    ),
    path(
        "settings/two-factor/recovery-codes/",
        two_factor_views.recovery_codes_new,
        name="two_factor_recovery_codes",
    ),
    path(
        "settings/two-factor/remove/",
        two_factor_views.factor_remove,
        name="two_factor_remove",
    ),
    path("two-factor/passkeys/", include("practice.twofactor.webauthn")),
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
