"""Background tasks of calendar sync (Django's Tasks framework), run by the worker
(``manage.py db_worker``). They take ids and public ids, never a secret link: the
queue is a database table, and the link is made when the email is written."""

from django.tasks import task

from calendarsync import busy_sources, services


@task
def feed_link_email(*, user_id: int, public_id: str, client_ip: str | None) -> None:
    services.feed_link_email_deliver(
        user_id=user_id, public_id=public_id, client_ip=client_ip
    )


@task
def busy_source_read(source_id: int) -> str:
    """Read one personal calendar as busy time and queue its next read. The result
    is a word ("read", "unchanged", "failed"…): nothing of the calendar."""
    return busy_sources.busy_source_read_queued(source_id)
