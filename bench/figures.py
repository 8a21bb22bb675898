"""Small helpers the benchmarks share."""

from datetime import datetime


def pct(values, q):
    """The q-th percentile (nearest rank) of a list of numbers."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def iso(text: str) -> float:
    """An event's ISO 8601 time (with Z) -> seconds since the epoch."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def shipyard(sequences: str) -> str:
    """A one-stage (dev) shipyard named bench, with the YAML lines of its sequences."""
    head = "apiVersion: spec.keptn.sh/0.2.3\nkind: Shipyard\nmetadata: {name: bench}\nspec:\n  stages:\n"
    return head + "    - name: dev\n      sequences:\n" + sequences
