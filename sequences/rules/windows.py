"""Freeze windows, as rules with no database: a window is one-off (a start and an end) or recurring (a cron
expression and a duration, in a named time zone); it covers a project's lanes, or only some stages and
services. What is decided here: whether a window is on at a moment, when it ends or next begins, until when a
lane is frozen (windows that touch are one freeze), whether a running sequence holds at its task boundary,
and what a window's fields must be (each error names its field).
"""

import re
from functools import cached_property, lru_cache
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from datetime import timezone as dt_timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sequences.rules.durations import format_duration, parse_duration

UTC = dt_timezone.utc
HOLD, FINISH = "hold", "finish"  # what a running sequence does when a window begins
RUNNING = (HOLD, FINISH)
MAX_DURATION = 366 * 86400  # a recurring window lasts at most a year
MAX_NAME, MAX_REASON, MAX_CRON = 100, 2000, 100
_MONTHS = {m: i for i, m in enumerate("jan feb mar apr may jun jul aug sep oct nov dec".split(), 1)}
_DAYS = {d: i for i, d in enumerate("sun mon tue wed thu fri sat".split())}
_MACROS = {"@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *", "@weekly": "0 0 * * 0",
           "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *"}


class WindowError(ValueError):
    """A window's field that cannot be taken: `field` is its name in the API."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field, self.message = field, message


# --- cron ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cron:
    """A parsed five-field cron expression (minute hour day-of-month month day-of-week)."""

    text: str
    minutes: frozenset
    hours: frozenset
    days: frozenset
    months: frozenset
    weekdays: frozenset  # 0 = Sunday
    any_day: bool
    any_weekday: bool

    def matches_day(self, day: date) -> bool:
        """As cron has it: when both day fields are restricted, either one matching is enough."""
        if day.month not in self.months:
            return False
        dom, dow = day.day in self.days, day.isoweekday() % 7 in self.weekdays
        if self.any_day or self.any_weekday:
            return dom and dow
        return dom or dow

    def times(self) -> list[tuple[int, int]]:
        """The (hour, minute) of every start in a matching day, in order."""
        return [(h, m) for h in sorted(self.hours) for m in sorted(self.minutes)]


def _field(part: str, low: int, high: int, names: dict, what: str) -> frozenset:
    values = set()
    for item in part.split(","):
        body, _, step_text = item.partition("/")
        step = 1
        if step_text:
            if not step_text.isdigit() or int(step_text) < 1:
                raise ValueError(f"'{item}' in the {what} field: a step must be a positive number")
            step = int(step_text)
        if body == "*":
            first, last = low, high
        else:
            first_text, dash, last_text = body.partition("-")
            first = _value(first_text, low, high, names, what)
            last = _value(last_text, low, high, names, what) if dash else (high if step_text else first)
            if last < first:
                raise ValueError(f"'{item}' in the {what} field runs backwards")
        values.update(range(first, last + 1, step))
    return frozenset(values)


def _value(text: str, low: int, high: int, names: dict, what: str) -> int:
    text = text.strip().lower()
    if text in names:
        return names[text]
    if not text.isdigit():
        raise ValueError(f"'{text}' is not a number in the {what} field")
    value = int(text)
    if what == "day-of-week" and value == 7:
        return 0  # 7 is Sunday too
    if not low <= value <= high:
        raise ValueError(f"{value} is outside the {what} field's {low}-{high}")
    return value


@lru_cache(maxsize=1024)
def parse_cron(text) -> Cron:
    """'0 22 * * fri' -> Cron; raises ValueError saying which field is wrong. Kept per text: windows are
    asked about often (every trigger into a project that has them)."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError("must be a cron expression such as '0 22 * * fri' (minute hour day month weekday)")
    spec = _MACROS.get(text.strip().lower(), text.strip())
    parts = spec.split()
    if len(parts) != 5:
        raise ValueError(f"'{text}' has {len(parts)} field(s); a cron expression has 5: minute hour "
                         "day-of-month month day-of-week")
    minutes = _field(parts[0], 0, 59, {}, "minute")
    hours = _field(parts[1], 0, 23, {}, "hour")
    days = _field(parts[2], 1, 31, {}, "day-of-month")
    months = _field(parts[3], 1, 12, _MONTHS, "month")
    weekdays = _field(parts[4], 0, 7, _DAYS, "day-of-week")
    cron = Cron(text.strip(), minutes, hours, days, months, weekdays, parts[2] == "*", parts[4] == "*")
    longest = {2: 29, 4: 30, 6: 30, 9: 30, 11: 30}
    if cron.any_weekday and not any(day <= longest.get(month, 31) for month in months for day in days):
        raise ValueError(f"'{text}' names a day that none of its months has")
    return cron


def zone(name) -> ZoneInfo:
    if not isinstance(name, str) or not name.strip():
        raise ValueError("must be a time zone name such as Europe/Vienna or UTC")
    try:
        return ZoneInfo(name.strip())
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"'{name}' is not a known time zone (such as Europe/Vienna, America/New_York or "
                         "UTC)") from None


# --- windows ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Window:
    """What the rules need of a stored window."""

    name: str
    stages: tuple = ()  # empty: every stage
    services: tuple = ()  # empty: every service
    starts_at: datetime | None = None  # one-off
    ends_at: datetime | None = None
    cron: str = ""  # recurring
    duration: float = 0.0  # seconds
    time_zone: str = "UTC"
    running: str = HOLD
    reason: str = ""
    created_by: str = ""
    created_at: datetime | None = None

    @cached_property
    def _cron(self) -> Cron:
        return parse_cron(self.cron)

    @cached_property
    def _zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)

    def covers(self, stage: str, service: str) -> bool:
        return (not self.stages or stage in self.stages) and (not self.services or service in self.services)

    def on_at(self, now: datetime) -> tuple[datetime, datetime] | None:
        """The occurrence (start, end) that is on at `now`, or None."""
        if not self.cron:
            on = self.starts_at and self.ends_at and self.starts_at <= now < self.ends_at
            return (self.starts_at, self.ends_at) if on else None
        start = self._last_start(now)
        if start is not None and now < start + timedelta(seconds=self.duration):
            return start, start + timedelta(seconds=self.duration)
        return None

    def next_after(self, moment: datetime) -> tuple[datetime, datetime] | None:
        """The first occurrence that begins after `moment`, or None (a one-off that has begun, or a cron
        that never matches again within eight years)."""
        if not self.cron:
            return (self.starts_at, self.ends_at) if self.starts_at and self.starts_at > moment else None
        cron, tz = self._cron, self._zone
        local = moment.astimezone(tz)
        times = cron.times()
        for offset in range(366 * 8 + 2):
            day = local.date() + timedelta(days=offset)
            if not cron.matches_day(day):
                continue
            for hour, minute in times:
                start = datetime(day.year, day.month, day.day, hour, minute, tzinfo=tz).astimezone(UTC)
                if start > moment:
                    return start, start + timedelta(seconds=self.duration)
        return None

    def next_change(self, now: datetime) -> datetime | None:
        """The next moment this window ends (the engine's timer: waiting work starts then)."""
        on = self.on_at(now)
        if on is not None:
            return on[1]
        upcoming = self.next_after(now)
        return upcoming[1] if upcoming else None

    def _last_start(self, now: datetime) -> datetime | None:
        """The latest start at or before `now` that is less than a duration ago; one look a day."""
        cron, tz = self._cron, self._zone
        earliest = now - timedelta(seconds=self.duration)
        local_now = now.astimezone(tz)
        times = cron.times()
        day = local_now.date()
        while day >= earliest.astimezone(tz).date():
            if cron.matches_day(day):
                for hour, minute in reversed(times):
                    start = datetime(day.year, day.month, day.day, hour, minute, tzinfo=tz).astimezone(UTC)
                    if start <= now:
                        return start if start > earliest else None
            day -= timedelta(days=1)
        return None


@dataclass(frozen=True)
class Freeze:
    """A lane's freeze at a moment: until when (windows that touch or overlap are one freeze), the window
    that is on now and lasts longest, and whether a running sequence holds at its task boundary."""

    until: datetime
    window: str
    holds_running: bool

    def words(self) -> str:
        return f"frozen until {self.until.isoformat(timespec='seconds').replace('+00:00', 'Z')} " \
               f"(window '{self.window}')"


class Calendar:
    """A project's windows, asked about many lanes: each window's occurrence at a moment is worked out once
    (an environment page asks for every lane at one moment; a trigger, for the windows covering its lane)."""

    def __init__(self, windows):
        self.windows = list(windows)
        self._on: dict[tuple[int, datetime], tuple | None] = {}

    def on_at(self, index: int, moment: datetime):
        key = (index, moment)
        found = self._on.get(key, self)
        if found is self:
            if len(self._on) > 4096:  # a calendar a process keeps is asked about ever new moments
                self._on = {}
            found = self._on[key] = self.windows[index].on_at(moment)
        return found

    def freeze(self, stage: str, service: str, now: datetime) -> Freeze | None:
        """The lane's freeze at `now`, or None when no window covering it is on."""
        covering = [i for i, w in enumerate(self.windows) if w.covers(stage, service)]
        on = [(self.windows[i], occurrence) for i in covering if (occurrence := self.on_at(i, now)) is not None]
        if not on:
            return None
        window, (_, until) = max(on, key=lambda item: item[1][1])
        holds = any(w.running == HOLD for w, _ in on)
        for _ in range(50):  # a window that begins as (or before) another ends extends the freeze
            later = [occurrence[1] for i in covering if (occurrence := self.on_at(i, until)) is not None]
            if not later or max(later) <= until:
                break
            until = max(later)
        return Freeze(until, window.name, holds)


def freeze_of(windows, stage: str, service: str, now: datetime) -> Freeze | None:
    """The lane's freeze at `now`, or None when no window covering it is on."""
    return Calendar(windows).freeze(stage, service, now)


# --- a window's fields --------------------------------------------------------------------------


def parse_moment(text, tz: ZoneInfo, field: str) -> datetime:
    """An ISO 8601 moment; one without an offset is read in the window's time zone."""
    if isinstance(text, datetime):
        moment = text
    elif isinstance(text, str) and text.strip():
        try:
            moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            raise WindowError(field, f"'{text}' is not a date and time; use ISO 8601 such as "
                                     "2026-12-24T18:00:00Z") from None
    else:
        raise WindowError(field, "must be a date and time in ISO 8601, such as 2026-12-24T18:00:00Z")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=tz)
    return moment.astimezone(UTC)


def window_duration(text) -> float:
    """'2h', '90m', '3d', '1d12h' -> seconds (Go durations, and days)."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        seconds = float(text)
    else:
        days = re.match(r"^\s*(\d+)d(.*)$", text) if isinstance(text, str) else None
        seconds = int(days.group(1)) * 86400 + (parse_duration(days.group(2)) if days.group(2).strip() else 0) \
            if days else parse_duration(text)
    if not 60 <= seconds <= MAX_DURATION:
        raise ValueError(f"must be between 1m and 366d, not {format_duration(seconds)}")
    return seconds


def _names(value, field: str, known: list[str]) -> tuple:
    if value in (None, ""):
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise WindowError(field, "must be a list of names")
    unknown = [v for v in value if v not in known]
    if unknown:
        kind = field[:-1]
        raise WindowError(field, f"the project has no {kind} '{unknown[0]}'; its {field} are "
                                 f"{', '.join(known) or 'none'}")
    return tuple(dict.fromkeys(value))


def clean(data, stages: list[str], services: list[str]) -> Window:
    """A window from the API's fields ({name, reason, stages, services, start, end | cron, duration,
    timeZone, running}), checked against the project's stages and services; raises WindowError."""
    if not isinstance(data, dict):
        raise WindowError("body", "must be a JSON object")
    unknown = sorted(set(data) - {"name", "reason", "stages", "services", "start", "end", "cron", "duration",
                                  "timeZone", "running"})
    if unknown:
        raise WindowError(unknown[0], "is not a field of a freeze window (name, reason, stages, services, start, "
                                      "end, cron, duration, timeZone, running)")
    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        raise WindowError("name", "is required: a name such as 'christmas' or 'weekend'")
    name = name.strip()
    if len(name) > MAX_NAME or not re.fullmatch(r"[\w.\- ]+", name):
        raise WindowError("name", f"must be at most {MAX_NAME} letters, digits, spaces, '.', '-' or '_'")
    reason = data.get("reason") or ""
    if not isinstance(reason, str) or len(reason) > MAX_REASON:
        raise WindowError("reason", f"must be text of at most {MAX_REASON} characters")
    try:
        tz_name = data.get("timeZone") or "UTC"
        tz = zone(tz_name)
    except ValueError as exc:
        raise WindowError("timeZone", str(exc)) from None
    running = data.get("running") or HOLD
    if running not in RUNNING:
        raise WindowError("running", f"must be 'hold' (running sequences hold at their next task) or 'finish' "
                                     f"(they run to their end), not {running!r}")
    window = dict(name=name, reason=reason.strip(), stages=_names(data.get("stages"), "stages", stages),
                  services=_names(data.get("services"), "services", services), time_zone=tz_name.strip(),
                  running=running)
    one_off = data.get("start") not in (None, "") or data.get("end") not in (None, "")
    recurring = data.get("cron") not in (None, "") or data.get("duration") not in (None, "")
    if one_off == recurring:
        raise WindowError("start" if one_off else "cron", "give either start and end (a one-off window) or cron "
                          "and duration (a recurring one)" + (", not both" if one_off else ""))
    if one_off:
        start = parse_moment(data.get("start"), tz, "start")
        end = parse_moment(data.get("end"), tz, "end")
        if end <= start:
            raise WindowError("end", f"{end.isoformat()} is not after the start, {start.isoformat()}")
        return Window(starts_at=start, ends_at=end, **window)
    cron = data.get("cron")
    try:
        parse_cron(cron if isinstance(cron, str) else None)
    except ValueError as exc:
        raise WindowError("cron", str(exc)) from None
    try:
        duration = window_duration(data.get("duration"))
    except ValueError as exc:
        raise WindowError("duration", str(exc)) from None
    return Window(cron=cron.strip(), duration=duration, **window)
