"""Query parameters every list endpoint reads the same way, each refused with a clear 400."""

from ninja import Query
from ninja.errors import HttpError

from sequences.rules.cloudevents import EventError, check_time

PAGE_SIZE = Query(None, ge=1, le=100, description="Items per page (1-100, default 20)")
PAGE_KEY = Query(None, pattern=r"^[0-9]{0,19}$", description="The nextPageKey of the previous page")
MAX_PAGE_KEY = 2**62  # any key this API gives out is far below; larger ones cannot be a row or an offset


def page_size(value: int | None, default: int = 20, maximum: int = 100) -> int:
    if value is None:
        return default
    if not 1 <= value <= maximum:
        raise HttpError(400, f"pageSize must be between 1 and {maximum}.")
    return value


def page_key(key: str | None) -> int:
    """nextPageKey as this API hands it out: a non-negative integer in decimal digits."""
    if not key:
        return 0
    if not key.isascii() or not key.isdigit() or len(key) > 19 or int(key) > MAX_PAGE_KEY:
        raise HttpError(400, f"nextPageKey {key[:40]!r} is not one this API gave out.")
    return int(key)


def moment(value: str | None, name: str):
    """An ISO 8601 time filter (fromTime, beforeTime), or None when not given."""
    if not value:
        return None
    try:
        return check_time(value, name)
    except EventError as exc:
        raise HttpError(400, exc.message) from None


def project_or_404(name: str, queryset=None):
    """The project of that name, or a 404 that names it."""
    from sequences.models import Project

    # a name no project can have (PostgreSQL refuses a NUL in a query) exists nowhere
    found = None if "\x00" in name else (queryset if queryset is not None else Project.objects).filter(
        name=name).first()
    if found is None:
        raise HttpError(404, f"Project {name[:100]!r} does not exist.")
    return found


def task_or_404(triggered_id: str, queryset=None):
    """The task execution with that triggered id, or a 404 that names it."""
    from sequences.models import TaskExecution

    found = (queryset if queryset is not None else TaskExecution.objects).filter(triggered_id=triggered_id).first()
    if found is None:
        raise HttpError(404, f"No task was triggered with id {triggered_id}.")
    return found
