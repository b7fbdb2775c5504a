from datetime import datetime

import segno
from django import template
from django.utils.timesince import timesince

register = template.Library()


@register.filter
def qr_data_uri(address: str) -> str:
    """A QR code of ``address`` as an SVG data URI (generated here, no third party)."""
    return segno.make(address, error="m").svg_data_uri(
        scale=4, border=2, dark="#1d2430", light="#ffffff"
    )


@register.filter
def ago(moment: datetime | None) -> str:
    """ "7 hours ago", "12 minutes ago", "just now": the largest unit only."""
    if moment is None:
        return ""
    elapsed = timesince(moment, depth=1)
    return "just now" if elapsed.startswith("0\xa0") else f"{elapsed} ago"
