from django.urls import path

from practice import views

app_name = "practice"

urlpatterns = [
    path("", views.settings_index, name="settings"),
    path("practice/", views.practice_settings, name="settings_practice"),
    path("users/", views.users, name="users"),
    path("users/add/", views.user_add, name="user_add"),
    path("users/<int:user_id>/", views.user_edit, name="user_edit"),
    path("users/<int:user_id>/active/", views.user_active, name="user_active"),
    path("users/<int:user_id>/sign-out/", views.user_sign_out, name="user_sign_out"),
    path(
        "sign-out-everywhere/",
        views.sign_out_everywhere,
        name="sign_out_everywhere",
    ),
    path(
        "users/<int:user_id>/two-factor/reset/",
        views.user_two_factor_reset,
        name="user_two_factor_reset",
    ),
    path("network/", views.network_settings, name="settings_network"),
    path("audit/", views.audit_log, name="audit_log"),
    path("audit/export.csv", views.audit_export, name="audit_export"),
]
