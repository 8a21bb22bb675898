import json

from django import template

register = template.Library()


@register.filter
def pretty_json(value) -> str:
    return json.dumps(value, indent=2, sort_keys=True)


@register.filter
def duration(delta) -> str:
    """A timedelta as a person reads it: 45s, 3m 12s, 2h 5m, 3d 4h."""
    if delta is None:
        return ""
    seconds = int(delta.total_seconds())
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m {seconds}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h {minutes}m"
    days, hours = divmod(hours, 24)
    return f"{days}d {hours}h"


@register.filter
def short(context: str) -> str:
    return (context or "")[:8]


@register.filter
def iso(moment) -> str:
    return moment.isoformat() if moment else ""


@register.filter
def ago(moment) -> str:
    """How long ago, as a person says it: just now, 42s ago, 3m 12s ago."""
    if moment is None:
        return "never"
    from django.utils import timezone

    delta = timezone.now() - moment
    return "just now" if delta.total_seconds() < 5 else f"{duration(delta)} ago"


@register.filter
def image_wrap(image: str):
    """An image name that may break after each '/' and before its tag, never inside a name or tag."""
    from django.utils.html import escape
    from django.utils.safestring import mark_safe

    image = image or ""
    repository, colon, tag = image.rpartition(":") if ":" in image.rsplit("/", 1)[-1] else (image, "", "")
    parts = [f'<span class="nobreak" title="{escape(image)}">{escape(p)}</span>' for p in repository.split("/")]
    text = "/<wbr>".join(parts)
    if colon:
        text += f'<wbr><span class="nobreak" title="{escape(image)}">:{escape(tag)}</span>'
    return mark_safe(text)


@register.filter
def moment(text):
    """An ISO 8601 time as the API writes it ("2026-12-24T18:00:00Z") -> a datetime for Django's `date`."""
    from datetime import datetime

    try:
        return datetime.fromisoformat(str(text).replace("Z", "+00:00")) if text else None
    except ValueError:
        return None
