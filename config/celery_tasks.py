"""A backend for Django's Tasks framework that queues in Celery, for RabbitMQ
(README, "Moving the queue to Redis or RabbitMQ"): each task is one message for
``tend.run_task`` (``config.celery``), worked by ``celery -A config.celery worker``.

``run_after`` becomes Celery's ``eta``. Results are not kept (Tend reads none)."""

import uuid
from typing import Any

from django.tasks import DEFAULT_TASK_QUEUE_NAME
from django.tasks.backends.base import BaseTaskBackend
from django.tasks.base import Task, TaskResult, TaskResultStatus
from django.tasks.exceptions import InvalidTask
from django.tasks.signals import task_enqueued
from django.utils import timezone


class CeleryBackend(BaseTaskBackend):
    """``OPTIONS["CELERY_QUEUE"]``: the Celery queue Django's ``default`` queue goes
    to (otherwise the app's ``task_default_queue``, CELERY_TASK_DEFAULT_QUEUE); any
    other queue name in ``QUEUES`` goes to the Celery queue of that name."""

    supports_defer = True
    supports_async_task = True
    supports_get_result = False
    supports_priority = False

    def validate_task(self, task: Task) -> None:
        super().validate_task(task)
        if task.takes_context:
            raise InvalidTask("The Celery backend does not pass a task context.")

    def enqueue(self, task: Task, args: Any, kwargs: Any) -> TaskResult:
        from config.celery import run_task

        self.validate_task(task)
        result: TaskResult = TaskResult(
            task=task,
            id=str(uuid.uuid4()),
            status=TaskResultStatus.READY,
            enqueued_at=timezone.now(),
            started_at=None,
            finished_at=None,
            last_attempted_at=None,
            args=list(args),
            kwargs=dict(kwargs),
            backend=self.alias,
            errors=[],
            worker_ids=[],
        )
        options: dict[str, str] = {}
        if task.queue_name != DEFAULT_TASK_QUEUE_NAME:
            options["queue"] = task.queue_name
        elif self.options.get("CELERY_QUEUE"):
            options["queue"] = self.options["CELERY_QUEUE"]
        # The arguments as normalised to JSON (TaskResult), as every backend
        # stores them: a task must not depend on getting the very objects.
        run_task.apply_async(
            args=(task.module_path, result.args, result.kwargs),
            task_id=result.id,
            eta=task.run_after,
            **options,
        )
        task_enqueued.send(type(self), task_result=result)
        return result
