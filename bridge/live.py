"""Live updates: after a commit, re-render the partials a change touches and push them to the pages.

sequences/ announces "context X of project P changed" (a signal sent on commit). A pusher thread takes
those notices off a queue (merging repeats), renders the affected partials with the same templates the
pages use, and sends them to the channel-layer groups of the pages that show them.
"""

import asyncio
import json
import logging
import queue
import threading

from asgiref.sync import async_to_sync
from channels.layers import InMemoryChannelLayer, get_channel_layer
from django.template.loader import render_to_string
from django.utils import timezone

from sequences.models import Project
from sequences.store.db import let_go_of_connection

from . import consumers, queries
from .detail import context_detail, job_for

log = logging.getLogger("bosun.live")


def listening(group: str) -> bool:
    """Whether any page listens to a group. Known for the in-memory layer (only this process's sockets can);
    assumed with Redis, where sockets of other processes may."""
    if isinstance(get_channel_layer(), InMemoryChannelLayer):
        return consumers.listeners(group) > 0
    return True


def anyone_listening() -> bool:
    """Whether any page or executor listens at all. With nobody there, a commit does not wake the pusher
    (waking a thread per event costs the request that commits it); a page that opens later renders afresh."""
    if isinstance(get_channel_layer(), InMemoryChannelLayer):
        return consumers.listeners() > 0
    return True


def fragments(project_name: str, context: str):
    """(group, html) for one changed context, most specific first: its deep link, its list row, its lanes,
    then the project's card. A generator, so each is sent as soon as it is rendered; nothing is rendered
    for a group no page listens to."""
    page_group = f"p.{project_name}"
    if not (listening(f"c.{context}") or listening(page_group) or listening("projects")):
        return
    project = Project.objects.filter(name=project_name).first()
    if project is None:
        return
    base = {"project": project, "project_name": project.name, "oob": True}
    detail = context_detail(project, context)
    if detail is None:
        return
    if listening(f"c.{context}"):
        yield f"c.{context}", render_to_string("bridge/sequence.html#live", {
            **base, "d": detail, "now": timezone.now(), "outcome": None})
    if listening(page_group):
        roots = [r for r in detail["runs"] if r.root]
        if roots:
            row = queries.rows_for(project, roots[:1])[0]
            yield page_group, render_to_string("bridge/sequences.html#row", {**base, "row": row})
        for stage, service in sorted({(r.stage, r.service) for r in detail["runs"]}):
            lane = queries.lane(project, stage, service)
            yield page_group, render_to_string("bridge/environment.html#lane", {**base, "lane": lane})
    if listening("projects"):
        card = queries.project_cards(project)[0]
        yield "projects", render_to_string("bridge/home.html#card", {"card": card, "oob": True})


def job_fragment(context: str, triggered_id: str):
    """(group, html) of one task's job (facts and log tail) on its deep link, if a page shows it."""
    if not listening(f"c.{context}"):
        return
    job = job_for(triggered_id)
    if job is not None:
        yield f"c.{context}", render_to_string("bridge/sequence.html#job", {"job": job, "oob": True})


def send(group: str, html: str, message: dict | None = None):
    layer = get_channel_layer()
    message = message or {"type": "push.fragment", "html": html}
    loop = consumers.server_loop
    if isinstance(layer, InMemoryChannelLayer):
        # The in-memory layer lives on the server's loop: hand the send to it (nobody listens without it).
        if loop is not None and loop.is_running():
            asyncio.run_coroutine_threadsafe(layer.group_send(group, message), loop)
    else:
        async_to_sync(layer.group_send)(group, message)


def push_now(project: str, context: str):
    for group, html in fragments(project, context):
        send(group, html)


def wake_executors(project: str, event: str = "changed"):
    """Tell job executors that a project's tasks changed (they look for open tasks and requests), or its jobs
    (they read them again)."""
    notice = json.dumps({"event": event, "project": project})
    for group in (f"x.{project}", "x.all"):
        if listening(group):
            send(group, "", {"type": "push.notice", "json": notice})


def _jobs_changed(sender=None, project=None, **_):
    try:
        wake_executors(project, "jobs")
    except Exception:
        log.exception("live: could not tell the executors that the jobs of %s changed", project)


class Pusher(threading.Thread):
    def __init__(self):
        super().__init__(name="bosun-live", daemon=True)
        self.notices: queue.Queue = queue.Queue()

    def notice(self, sender=None, project=None, context=None, **_):
        if project and context and anyone_listening():
            self.notices.put((project, context, None))

    def log_notice(self, sender=None, project=None, context=None, triggered_id=None, **_):
        if project and context and triggered_id and anyone_listening():
            self.notices.put((project, context, triggered_id))

    def run(self):
        while True:
            first = self.notices.get()
            pending = {first}
            while True:  # merge a burst of notices: each context (or job log) is rendered once
                try:
                    pending.add(self.notices.get_nowait())
                except queue.Empty:
                    break
            try:
                self._push(pending)
            except Exception:  # one bad batch must not end the pusher: later changes still reach the pages
                log.exception("live: a batch of pushes failed")
            finally:
                let_go_of_connection()  # not kept while it waits for the next change

    @staticmethod
    def _push(pending: set):
        for project in {p for p, _, job in pending if job is None}:
            try:
                wake_executors(project)
            except Exception:
                log.exception("live: could not wake the executors of %s", project)
        for project, context, triggered_id in sorted(pending, key=lambda n: n[2] or ""):
            try:
                if triggered_id is None:
                    push_now(project, context)
                elif (project, context, None) not in pending:  # a full render shows the log too
                    for group, html in job_fragment(context, triggered_id):
                        send(group, html)
            except Exception:
                log.exception("live: could not push %s/%s", project, context)


_pusher: Pusher | None = None
_lock = threading.Lock()


def start():
    """Push this process's changes to pages and executors. Every process that changes state calls it: `up`,
    the ASGI application (bridge/asgi.py), `run_engine`. Calling it again does nothing."""
    global _pusher
    from sequences.store.signals import context_changed, jobs_changed, task_log_changed

    with _lock:
        if _pusher is None:
            _pusher = Pusher()
            _pusher.start()
            context_changed.connect(_pusher.notice, dispatch_uid="bosun-live")
            task_log_changed.connect(_pusher.log_notice, dispatch_uid="bosun-live-log")
            jobs_changed.connect(_jobs_changed, dispatch_uid="bosun-live-jobs")
