"""`{% nav_link url "Label" %}`: a link of the main navigation that says when the reader is in
its section (aria-current), so the folded phone menu and screen readers tell where you are."""

from django import template
from django.utils.html import format_html

register = template.Library()


@register.simple_tag(takes_context=True)
def nav_link(context, url: str, label: str, exact: bool = False):
    """exact: the dashboard, whose URL begins every other page's."""
    path = context["request"].path
    here = path == url if exact else path.startswith(url)
    if here:
        return format_html('<a href="{}" aria-current="page">{}</a>', url, label)
    return format_html('<a href="{}">{}</a>', url, label)
