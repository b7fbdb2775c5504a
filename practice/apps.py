from django.apps import AppConfig


class PracticeConfig(AppConfig):
    name = "practice"
    verbose_name = "Practices and users"

    def ready(self):
        from practice import checks, signals  # noqa: F401
        from practice.twofactor import receivers  # noqa: F401
