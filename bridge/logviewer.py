"""The log viewer: a task's whole kept log with numbered lines you can link to (#L12), its colours, a search
that can narrow it to the matching lines, and, while the job runs, its new lines as they come (follow/pause).

While a job runs, the page asks for the lines after those it has (`?after=N&cut=C`): the last line it has may
still grow, so the answer starts again from the first line not yet ended by a newline. Once output was cut
from the middle (a long log keeps its head and its tail), the lines after the head move, and the page gets
them all again."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.http import require_safe

from sequences.models import TaskExecution as TE, TaskLog

from .ansi import styled_lines
from .pages import page_context
from .queries import task_badge


def _int(value, default=0) -> int:
    return int(value) if value and value.isdigit() and len(value) < 12 else default


def log_lines(text: str, query: str = "", first: int = 0) -> list[dict]:
    """The lines of `text` from index `first` on, numbered from 1, each with its styled runs and whether it
    holds `query` (case-insensitive)."""
    needle = query.lower()
    lines = []
    for index, runs in enumerate(styled_lines(text)):
        if index < first:
            continue
        plain = "".join(part for _, part in runs)
        lines.append({"number": index + 1, "runs": runs, "hit": bool(needle) and needle in plain.lower()})
    return lines


def _ended_lines(text: str) -> int:
    """How many lines of `text` end with a newline (the last one may still grow while the job runs)."""
    return text.count("\n")


@login_required
@require_safe
def task_log_view(request, project, context, triggered_id):
    task = get_object_or_404(TE.objects.select_related("sequence_execution__project"), triggered_id=triggered_id,
                             sequence_execution__context=context, sequence_execution__project__name=project)
    run = task.sequence_execution
    entry = TaskLog.objects.filter(task=task).first()
    text = entry.shown() if entry else ""
    cut = entry.cut_bytes if entry else 0
    query = request.GET.get("q", "")[:200]
    running = task.state in (TE.STARTED, TE.KILLING)
    page = {"task": task, "run": run, "running": running, "badge": task_badge(task), "cut_bytes": cut, "ended": _ended_lines(text),
            "total_bytes": entry.total_bytes if entry else 0, "query": query,
            "only": request.GET.get("only") == "1" and bool(query),
            "raw_url": reverse("task-log", args=[project, context, triggered_id]),
            "sequence_url": reverse("sequence", args=[project, context])}
    if "after" in request.GET:  # the page asks for what is new
        seen_cut = _int(request.GET.get("cut"), -1)
        first = _int(request.GET.get("after")) if seen_cut == cut else 0
        page.update(lines=log_lines(text, query, first), first=first, replace=first == 0)
        return render(request, "bridge/log.html#update", page)
    lines = log_lines(text, query)
    page.update(lines=lines, hits=sum(line["hit"] for line in lines))
    return render(request, "bridge/log.html", page_context(request, run.project, tab="sequences", **page))
