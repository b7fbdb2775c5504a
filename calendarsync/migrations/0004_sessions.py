"""Delete the links that are refused today because their owner was deactivated or
lost a role, or their clinician did: until now such a link came back to life when
the change was undone. From here on ``services.feed_links_prune`` deletes them
when the change is made."""

from django.db import migrations
from django.db.models import Q


def delete_unauthorised_links(apps, schema_editor):
    FeedLink = apps.get_model("calendarsync", "FeedLink")
    FeedLink.objects.filter(
        Q(access__user__is_active=False)
        # Personal and clinician calendars: the clinician is no longer one.
        | Q(clinician__is_active=False)
        | Q(clinician__is_clinician=False)
        # Other clinicians' and the practice's calendars need either role.
        | Q(
            scope__in=["clinician", "practice"],
            access__user__is_practice_admin=False,
            access__user__is_scheduler=False,
        )
    ).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("calendarsync", "0003_feedfetch_networks"),
        ("practice", "0002_operator_and_email_constraints"),
    ]

    operations = [
        migrations.RunPython(delete_unauthorised_links, migrations.RunPython.noop),
    ]
