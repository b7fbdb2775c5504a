"""Telling the rest of Tend that rows changed, however they were written.

Django signals ``post_save``, ``post_delete`` and ``m2m_changed`` for one row at a
time, but not for ``QuerySet.update()``, ``bulk_create()`` or ``bulk_update()``.
Models whose changes others must hear about (calendar feeds answer polls from a
snapshot that any change must end: ``calendarsync.freshness``) use
``ChangeNotifyingQuerySet``, which sends ``rows_changed`` after those bulk writes.

This module knows nothing about who listens."""

from contextvars import ContextVar

from django.db import models
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
