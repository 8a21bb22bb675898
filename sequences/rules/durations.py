"""Durations in Go's syntax (Keptn's and the shipyard's): '90s', '10m', '1h30m', '250ms'."""

import re

DURATION_PART_RE = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")


def parse_duration(text) -> float:
    """'90s', '10m', '1h30m', '250ms' -> seconds. Raises ValueError on anything else."""
    if isinstance(text, bool) or not isinstance(text, str):
        raise ValueError("must be a duration string such as 90s, 10m or 1h30m")
    text = text.strip()
    pos, total = 0, 0.0
    for match in DURATION_PART_RE.finditer(text):
        if match.start() != pos:
            break
        value, unit = float(match.group(1)), match.group(2)
        total += value * {"h": 3600, "m": 60, "s": 1, "ms": 0.001}[unit]
        pos = match.end()
    if not text or pos != len(text):
        raise ValueError(f"'{text}' is not a duration; use Go syntax such as 90s, 10m or 1h30m")
    return total


def format_duration(seconds: float) -> str:
    """Seconds -> Go's time.Duration.String() form: 3m0s, 1h30m0s, 500ms."""
    if seconds < 1:
        return f"{round(seconds * 1000)}ms" if seconds else "0s"
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    secs_text = f"{secs:.3f}".rstrip("0").rstrip(".") + "s"
    if hours:
        return f"{int(hours)}h{int(minutes)}m{secs_text}"
    if minutes:
        return f"{int(minutes)}m{secs_text}"
    return secs_text
