"""Background tasks of the practice app (Django's Tasks framework), run by the
worker (``manage.py db_worker``). Each takes only ids and plain values, never a
secret: the queue is a database table, and links are made when the email is sent.
Services enqueue them when their transaction commits."""

from django.tasks import task

from practice import services


@task
def password_reset_email(*, email: str, client_ip: str | None) -> None:
    services.password_reset_email_deliver(email=email, client_ip=client_ip)


@task
def invitation_email(*, user_id: int) -> None:
    services.invitation_email_deliver(user_id=user_id)
