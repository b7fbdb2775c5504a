"""Telling the rest of Tend that rows changed, however they were written.

Django signals ``post_save``, ``post_delete`` and ``m2m_changed`` for one row at a
time, but not for ``QuerySet.update()``, ``bulk_create()`` or ``bulk_update()``.
Models whose changes others must hear about (calendar feeds answer polls from a
snapshot that any change must end: ``calendarsync.freshness``) use
``ChangeNotifyingQuerySet``, which sends ``rows_changed`` after those bulk writes.

This module knows nothing about who listens."""

import threading
from contextvars import ContextVar
from typing import Self

from django.db import models, transaction
from django.dispatch import Signal

# sender: the model; practice_ids: the practices whose rows changed, or None when
# that is not known without another query (listeners then assume "any practice");
# objs: the written instances (bulk_create, bulk_update), or None (update()).
rows_changed = Signal()

# Per model, fields whose changes nobody downstream reads (bookkeeping such as
# ``last_login``): writes of only these fields send nothing.
QUIET_FIELDS_ATTRIBUTE = "quiet_fields"


def quiet_fields(model) -> frozenset[str]:
    return frozenset(getattr(model, QUIET_FIELDS_ATTRIBUTE, ()))


def practice_ids_of(objs) -> set[int] | None:
    """The practices of model instances, or None if any one's is unknown."""
    ids = set()
    for obj in objs:
        practice_id = getattr(obj, "practice_id", None)
        if practice_id is None:
            return None
        ids.add(practice_id)
    return ids


# Set while ``bulk_update`` runs: Django writes it through ``update()``, whose
# notice (practices unknown) would say less than the one ``bulk_update`` sends.
_in_bulk_update: ContextVar[bool] = ContextVar("in_bulk_update", default=False)


class ChangeNotifyingQuerySet(models.QuerySet):
    def update(self, **kwargs):
        count = super().update(**kwargs)
        if _in_bulk_update.get():
            return count
        if count and not set(kwargs) <= quiet_fields(self.model):
            rows_changed.send(sender=self.model, practice_ids=None, objs=None)
        return count

    update.alters_data = True

    def bulk_create(self, objs, *args, **kwargs):
        created = super().bulk_create(objs, *args, **kwargs)
        if created:
            rows_changed.send(
                sender=self.model, practice_ids=practice_ids_of(created), objs=created
            )
        return created

    bulk_create.alters_data = True

    def bulk_update(self, objs, fields, *args, **kwargs):
        objs = list(objs)
        token = _in_bulk_update.set(True)
        try:
            count = super().bulk_update(objs, fields, *args, **kwargs)
        finally:
            _in_bulk_update.reset(token)
        if count and not set(fields) <= quiet_fields(self.model):
            rows_changed.send(
                sender=self.model, practice_ids=practice_ids_of(objs), objs=objs
            )
        return count

    bulk_update.alters_data = True


ChangeNotifyingManager = models.Manager.from_queryset(ChangeNotifyingQuerySet)


class CommitBatch:
    """What one transaction noted, acted on once when it commits.

    A subclass keeps the notes and says what to do with them in ``send``; callers
    take ``Subclass.current()`` and add to it. There is one batch per subclass,
    transaction and database: changes made in one transaction are acted on
    together, after it commits, however many there were. Its ``flush`` is
    registered with every note (the first call sends, the others find it done),
    so a note made inside a savepoint is sent when that commits too, and a batch
    whose first callback is no longer where it was registered (the transaction,
    or the savepoint it was noted in, was rolled back) is dropped for a new one."""

    def __init__(self) -> None:
        self.flushed = False
        self._position = -1

    def send(self) -> None:
        raise NotImplementedError

    def flush(self) -> None:
        if not self.flushed:
            self.flushed = True
            self.send()

    @classmethod
    def current(cls, using: str | None = None) -> Self | None:
        """The current transaction's batch (None outside a transaction: act at
        once)."""
        connection = transaction.get_connection(using)
        if not connection.in_atomic_block:
            return None
        batches = _batches.__dict__.setdefault("by_key", {})
        key = (cls, connection.alias)
        batch = batches.get(key)
        callbacks = connection.run_on_commit
        if (
            batch is None
            or batch.flushed
            or batch._position >= len(callbacks)
            or callbacks[batch._position][1] != batch.flush
        ):
            batch = batches[key] = cls()
            batch._position = len(callbacks)
        transaction.on_commit(batch.flush, using=using, robust=True)
        return batch


_batches = threading.local()
