import segno
from django import template

register = template.Library()


@register.filter
def qr_data_uri(address: str) -> str:
    """A QR code of ``address`` as an SVG data URI (generated here, no third party)."""
    return segno.make(address, error="m").svg_data_uri(
        scale=4, border=2, dark="#1d2430", light="#ffffff"
    )
