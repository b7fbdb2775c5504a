"""The Celery application that works Django's tasks when the queue is in RabbitMQ
(``TASKS_BACKEND=config.celery_tasks.CeleryBackend``; README, "Moving the queue to
Redis or RabbitMQ"). Workers: ``celery -A config.celery worker``.

It knows one task, ``tend.run_task``, which runs a Django task named by its module
path, so a worker needs no list of Tend's task modules: the message says which to
import, as a row of the database queue does."""

import os

from celery import Celery
from django.utils.module_loading import import_string

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("tend")
# CELERY_BROKER_URL, CELERY_TASK_DEFAULT_QUEUE… from config/settings.py.
app.config_from_object("django.conf:settings", namespace="CELERY")


@app.task(name="tend.run_task", ignore_result=True)
def run_task(module_path: str, args: list, kwargs: dict) -> None:
    """Run one Django task (``config.celery_tasks.CeleryBackend.enqueue``). Its
    return value is not kept: Tend never reads a task's result."""
    import_string(module_path).call(*args, **kwargs)
