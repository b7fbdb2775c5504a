"""The nightly full reconcile: a push run for every connected calendar account.

Run it once a day from cron or the platform's scheduled tasks (README →
Deploying → Background worker); the workers do the runs. An account with a run
already waiting gets no second one: every run is a full reconcile."""

from django.core.management.base import BaseCommand

from calendarsync.pushqueue import push_request_all


class Command(BaseCommand):
    help = "Enqueue a full push run for every connected calendar account."

    def handle(self, *args, **options):
        enqueued = push_request_all()
        self.stdout.write(
            f"Enqueued a push run for {len(enqueued)} calendar "
            f"account{'' if len(enqueued) == 1 else 's'}."
        )
