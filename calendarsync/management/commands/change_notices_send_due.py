"""Queue the change notices that wait without a task: a task lost with a worker,
or a tasks backend that cannot defer (the 10-minute window then closes without a
task to reopen it).

Run it every few minutes from cron or the platform's scheduled tasks (README →
Deploying → Background worker); the workers send. A subscriber with a send
already queued gets no second one."""

from django.core.management.base import BaseCommand

from calendarsync.notices import notices_request_due


class Command(BaseCommand):
    help = "Enqueue a send for every change notice that is waiting."

    def handle(self, *args, **options):
        queued = notices_request_due()
        self.stdout.write(
            f"Enqueued change notices for {len(queued)} "
            f"user{'' if len(queued) == 1 else 's'}."
        )
