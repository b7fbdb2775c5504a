from django.apps import AppConfig


class CalendarsyncConfig(AppConfig):
    name = "calendarsync"
    verbose_name = "Calendar sync"

    def ready(self):
        from calendarsync import checks, freshness  # noqa: F401

        freshness.connect()
