from practice.models import Role


def _tab(request) -> str:
    match = getattr(request, "resolver_match", None)
    if match is None:
        return ""
    if (
        match.namespace in ("practice", "calendarsync")
        or match.url_name == "password_change"
        or (match.url_name or "").startswith("settings_")
        or (match.url_name or "").startswith("two_factor")
    ):
        return "settings"
    if match.namespace == "scheduling":
        return (
            "patients" if (match.url_name or "").startswith("patient") else "scheduling"
        )
    return ""


def shell(request):
    """Which tab is current and which sections the signed-in user may see."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or user.practice_id is None:
        return {}
    return {
        "tab": _tab(request),
        "is_practice_admin": user.has_role(Role.ADMINISTRATOR),
        "can_manage_all_schedules": user.can_manage_all_schedules,
    }
