from django.apps import AppConfig


class CalendarsyncConfig(AppConfig):
    name = "calendarsync"
    verbose_name = "Calendar sync"

    def ready(self):
        from calendarsync import (  # noqa: F401
            checks,
            freshness,
            notices,
            pushqueue,
            selectors,
            services,
        )
        from practice import hooks

        def prune(sender, user, **kwargs):
            services.feed_links_prune(user=user)

        def sync_disabled(sender, practice, **kwargs):
            return selectors.feed_access_disabled_user_ids(practice=practice)

        hooks.calendar_sync_disabled_users.connect(
            sync_disabled, weak=False, dispatch_uid="calendarsync-sync-disabled"
        )
        freshness.connect()
        pushqueue.connect()
        notices.connect()
        hooks.user_authority_changed.connect(
            prune, weak=False, dispatch_uid="calendarsync-prune"
        )

        def busy_owner_changed(sender, user, **kwargs):
            from calendarsync.busy_sources import busy_sources_owner_changed

            busy_sources_owner_changed(user)

        hooks.user_authority_changed.connect(
            busy_owner_changed, weak=False, dispatch_uid="calendarsync-busy"
        )
