from django.apps import AppConfig


class CalendarsyncConfig(AppConfig):
    name = "calendarsync"
    verbose_name = "Calendar sync"

    def ready(self):
        from calendarsync import checks, freshness, pushqueue, services  # noqa: F401
        from practice import hooks

        def prune(sender, user, **kwargs):
            services.feed_links_prune(user=user)

        freshness.connect()
        pushqueue.connect()
        hooks.user_authority_changed.connect(
            prune, weak=False, dispatch_uid="calendarsync-prune"
        )
