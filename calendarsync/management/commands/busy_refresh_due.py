"""Enqueue a read of every personal calendar (busy time) that is due.

Each read queues the next one 10 minutes later by itself; this command catches
what that chain cannot: a tasks backend that cannot defer, a queue that was
emptied, a read lost with a worker. Run it every few minutes from cron (README →
Deploying → Background worker); ``make run`` runs it once as it starts. A source
with a read already waiting gets no second one."""

from django.core.management.base import BaseCommand

from calendarsync.busy_sources import busy_read_due


class Command(BaseCommand):
    help = "Enqueue a read of every personal calendar whose busy time is due."

    def handle(self, *args, **options):
        enqueued = busy_read_due()
        self.stdout.write(
            f"Enqueued a read of {len(enqueued)} personal "
            f"calendar{'' if len(enqueued) == 1 else 's'}."
        )
