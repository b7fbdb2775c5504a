from django.apps import AppConfig


class CalendarsyncConfig(AppConfig):
    name = "calendarsync"
    verbose_name = "Calendar sync"

    def ready(self):
        from calendarsync import snapshot

        snapshot.connect()
