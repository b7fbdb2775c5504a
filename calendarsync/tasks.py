"""Background tasks of calendar sync (Django's Tasks framework), run by the worker
(``manage.py db_worker``). They take ids and public ids, never a secret link: the
queue is a database table, and the link is made when the email is written."""

from django.tasks import task

from calendarsync import attention, busy_sources, notices, services


@task
def feed_link_email(*, user_id: int, public_id: str, client_ip: str | None) -> None:
    services.feed_link_email_deliver(
        user_id=user_id, public_id=public_id, client_ip=client_ip
    )


@task
def attention_email(*, account_id: int, kind: str) -> bool:
    return attention.attention_email_deliver(account_id=account_id, kind=kind)


@task
def change_notices_send(*, user_id: int) -> str:
    return notices.notices_send(user_id=user_id)


@task
def busy_source_read(source_id: int) -> str:
    """Read one personal calendar as busy time and queue its next read. The result
    is a word ("read", "unchanged", "failed"…): nothing of the calendar."""
    return busy_sources.busy_source_read_queued(source_id)
