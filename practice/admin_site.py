"""Django admin at /operator/, for installation operators only.

Practice staff never reach it: the site refuses anyone who belongs to a practice,
whatever flags their account carries, and the database forbids staff flags on
practice users (see ``User.Meta.constraints``). Operators always need a passed
second step (django-otp's ``is_verified``); until then the second-step middleware
sends them to pass it or set it up.
"""

from django.contrib import admin
from django.contrib.admin.apps import AdminConfig


class OperatorAdminSite(admin.AdminSite):
    site_header = "Tend operators"
    site_title = "Tend operators"
    index_title = "Installation"

    def has_permission(self, request):
        user = request.user
        return bool(
            user.is_active
            and user.is_superuser
            and getattr(user, "practice_id", None) is None
            and getattr(user, "is_verified", lambda: False)()
        )


class OperatorAdminConfig(AdminConfig):
    default_site = "practice.admin_site.OperatorAdminSite"
