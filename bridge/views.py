"""The Bridge's pages and the forms behind its buttons. Thin: fetch, call sequences/, render."""

import uuid

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST, require_safe
from django.views.decorators.vary import vary_on_headers
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from bosun.images import ImageError, image_reference
from sequences import configuration, integration_logs
from sequences import registrations as uniform
from sequences.api.auth import MANAGE, OPERATE, PASS_FREEZES, authenticate
from sequences.models import ApiToken, Event, Project, TaskExecution
from sequences.notices.metrics import REGISTRY
from sequences.rules import outcomes
from sequences.rules.shipyard import NAME_RE
from sequences.store import throttle
from sequences.transitions import arrivals as intake
from sequences.transitions import claims
from sequences.transitions import commands as control
from sequences.transitions import decisions, holds, reopen

from . import queries
from .detail import context_detail
from .pages import page_context


def _project(name) -> Project:
    return get_object_or_404(Project.objects.prefetch_related("services"), name=name)


@login_required
@require_safe
@vary_on_headers("HX-Request")
def home(request):
    if request.GET.get("project"):  # the project switcher without JavaScript
        name = request.GET["project"]
        if not NAME_RE.match(name) or len(name) > 100:
            raise Http404(f"There is no project named {name[:100]!r}.")
        return redirect(reverse("environment", args=[name]))
    return render(request, "bridge/home.html", page_context(request, cards=queries.project_cards(),
                                                     can_manage=request.user.has_perm(MANAGE)))


@login_required
@require_safe
@vary_on_headers("HX-Request")
def environment(request, project):
    return _environment_page(request, project)


def _environment_page(request, project, form=None, status=200):
    """The environment, and the trigger form with what was typed and what is wrong with it."""
    found = _project(project)
    integrations = uniform.of_project(found.name)
    env = queries.environment(found, integrations)
    shipyard = found.parsed_shipyard()
    sequences = sorted({f"{s.name}|{q.name}" for s in shipyard.stages for q in s.sequences})
    errors = integration_logs.latest([i.integration_id for i in integrations])
    for integration in integrations:
        integration.recent_errors = errors[integration.integration_id]
    context = page_context(request, found, tab="environment", env=env, sequences=[s.split("|") for s in sequences],
                    stage_names=shipyard.stage_names, shipyard_warnings=configuration.warnings(found),
                    integrations=integrations,
                    form=form or {"values": {"target": f"{shipyard.stage_names[0]}|delivery"}, "errors": {}})
    return render(request, "bridge/environment.html", context, status=status)


def _trigger_errors(sequence: str, image: str, tag: str, labels_text: str) -> dict:
    """What is wrong with the trigger form, per field, in words."""
    errors = {}
    if sequence == "delivery" or image or tag:
        try:
            image_reference(image, tag)
        except ImageError as exc:
            errors[exc.field] = exc.message
    bad = [line for line in labels_text.splitlines() if line.strip() and ("=" not in line or not line.split("=")[0].strip())]
    if bad:
        errors["labels"] = f"Write one key=value per line; '{bad[0].strip()[:40]}' is not."
    return errors


@login_required
@require_safe
@vary_on_headers("HX-Request")
def sequence_list(request, project):
    found = _project(project)
    filters = {key: request.GET.get(key, "") for key in ("service", "stage", "sequence", "state")}
    before = request.GET.get("before")
    before = int(before) if before and before.isdigit() else None
    rows, older = queries.sequence_rows(found, filters, before)
    shipyard = found.parsed_shipyard()
    context = page_context(request, found, tab="sequences", rows=rows, older=older, filters=filters, before=before,
                    stage_names=shipyard.stage_names,
                    sequence_names=sorted({q.name for s in shipyard.stages for q in s.sequences}),
                    services=[s.name for s in found.services.all()], states=list(outcomes.FILTER_KEYS))
    template = "bridge/sequences.html#rows" if request.htmx and request.GET.get("partial") == "rows" \
        else "bridge/sequences.html"
    return render(request, template, context)


@login_required
@require_safe
@vary_on_headers("HX-Request")
def sequence_detail(request, project, context, stage=None, event_id=None):
    found = _project(project)
    detail = context_detail(found, context)
    if detail is None:
        events = list(Event.objects.filter(context=context, project=found.name).order_by("id")[:50])
        if not events or stage or event_id:
            raise Http404(f"Project {project} has no sequence with context {context}.")
        # a trigger that ended at once (no such stage or sequence): its events, and why
        ended = next((e for e in events if e.type.endswith(".finished")), None)
        return render(request, "bridge/context_events.html", page_context(request, found, context=context, events=events,
                                                                      first=events[0], ended=ended))
    if stage and stage not in {r.stage for r in detail["runs"]}:
        raise Http404(f"Context {context} did not reach stage {stage}.")
    if event_id and not any(e.event_id == event_id for e in detail["events"]):
        raise Http404(f"Context {context} has no event {event_id}.")
    page = page_context(request, found, d=detail, selected_stage=stage, selected_event=event_id,
                 outcome=None, now=timezone.now())
    template = "bridge/sequence.html"
    if request.htmx and request.GET.get("partial") == "live":
        template = "bridge/sequence.html#live"
    return render(request, template, page)


@login_required
@require_safe
def deployment_history(request, project, stage, service):
    """What was deployed to a lane, when, by whom and how it ended (reached from the environment's lane)."""
    found = _project(project)
    if found.parsed_shipyard().stage(stage) is None or not found.services.filter(name=service).exists():
        raise Http404(f"Project {project} has no lane {stage}/{service}.")
    before = request.GET.get("before")
    before = int(before) if before and before.isdigit() else None
    rows, older = queries.deployments(found, stage, service, before)
    deployed = configuration.deployed_images(found).get((stage, service), "")
    return render(request, "bridge/history.html", page_context(request, found, tab="environment", stage=stage,
                                                        service=service, rows=rows, older=older, before=before,
                                                        deployed=deployed))


@login_required
@require_safe
def task_log(request, project, context, triggered_id):
    """A task's log for a person logged in to the Bridge (the API's route takes a token)."""
    task = get_object_or_404(TaskExecution, triggered_id=triggered_id, sequence_execution__context=context,
                             sequence_execution__project__name=project)
    return claims.log_response(task, download=request.GET.get("download") == "1")


def _outcome_response(request, project, context, outcome: control.Outcome):
    """Show a command's outcome in place (htmx) or as a message after a redirect (no JavaScript)."""
    ok = outcome.code < 300
    text = outcome.body.get("message") or f"Done: the sequence is {outcome.body.get('state') or 'updated'}."
    if request.htmx:
        found = _project(project)
        detail = context_detail(found, context)
        frame = page_context(request, found, d=detail, outcome={"ok": ok, "text": text}, now=timezone.now())
        # The outcome into its slot, which lives outside the region (a push that redraws the region while the
        # command is under way detaches the form, and htmx then finds no target inside the form's old tree),
        # and the region again out of band beside it.
        return HttpResponse(render_to_string("bridge/sequence.html#outcome", frame, request)
                            + render_to_string("bridge/sequence.html#live", {**frame, "oob": True}, request))
    messages.add_message(request, messages.SUCCESS if ok else messages.ERROR, text)
    return redirect(reverse("sequence", args=[project, context]))


def _require_operator(request):
    if not request.user.has_perm(OPERATE):
        return control.Outcome(403, {"code": 403, "message": "You may not control sequences; ask an admin."})
    return None


@login_required
@require_POST
def sequence_control(request, project, context):
    outcome = _require_operator(request) or control.control_sequence(
        project, context, request.POST.get("state", ""), actor=control.Actor(request.user.get_username(), "bridge"),
        stage=request.POST.get("stage") or None, mode=request.POST.get("mode") or None,
        suspend_running=request.POST.get("suspendRunning") == "on", reason=request.POST.get("reason", ""),
        idempotency_key=request.POST.get("idempotency_key", ""))
    return _outcome_response(request, project, context, outcome)


@login_required
@require_POST
def sequence_rerun(request, project, context):
    """The Re-run dialog: an ended sequence of a stage again, in its context or in a new one."""
    outcome = _require_operator(request) or control.retrigger_sequence(
        project, context, actor=control.Actor(request.user.get_username(), "bridge"),
        stage=request.POST.get("stage", ""), sequence=request.POST.get("sequence", ""),
        new_context=request.POST.get("new_context") == "on", reason=request.POST.get("reason", ""),
        idempotency_key=request.POST.get("idempotency_key", ""))
    if outcome.code >= 300:
        messages.error(request, outcome.body.get("message", "The sequence could not be re-run."))
        return redirect(reverse("sequence", args=[project, context]))
    body = outcome.body
    where = "" if body["keptnContext"] == context else " in a new context"
    messages.success(request, f"Re-run: {body['sequence']} of {body['service']} in {body['stage']}{where} is "
                              f"{body['state']}.")
    return redirect(reverse("sequence", args=[project, body["keptnContext"]]) + f"#stage-{body['stage']}")


@login_required
@require_POST
def sequence_let_through(request, project, context):
    """The Let through dialog: a sequence of a stage passes the freeze window that keeps it (audited)."""
    if not request.user.has_perm(PASS_FREEZES):
        outcome = control.Outcome(403, {"code": 403, "message": "You may not let sequences through a freeze "
                                                                "window; ask an admin."})
    else:
        outcome = holds.let_through_command(
            project, context, actor=control.Actor(request.user.get_username(), "bridge"),
            stage=request.POST.get("stage", ""), reason=request.POST.get("reason", ""),
            idempotency_key=request.POST.get("idempotency_key", ""))
    return _outcome_response(request, project, context, outcome)


@login_required
@require_POST
def task_command(request, project, context, triggered_id, command):
    get_object_or_404(TaskExecution, triggered_id=triggered_id, sequence_execution__context=context)
    who = control.Actor(request.user.get_username(), "bridge")
    key = request.POST.get("idempotency_key", "")
    reason = request.POST.get("reason", "")
    outcome = _require_operator(request)
    if outcome is None:
        if command == "finish":
            outcome = control.finish_task(triggered_id, request.POST.get("result", ""),
                                          request.POST.get("status", "succeeded"), reason, actor=who,
                                          idempotency_key=key)
        elif command == "kill":
            outcome = control.kill_task(triggered_id, reason, actor=who, idempotency_key=key)
        elif command == "retry":
            outcome = reopen.retry_task(triggered_id, reason, actor=who, idempotency_key=key)
        elif command in ("approve", "decline"):
            outcome = decisions.decide_approval(triggered_id, command == "approve", reason, actor=who,
                                              idempotency_key=key)
        else:
            raise Http404(f"No task command {command}.")
    return _outcome_response(request, project, context, outcome)


@login_required
@require_POST
def trigger(request, project):
    """The 'Trigger a sequence' form: a delivery with image and tag, or any sequence of a stage with labels."""
    found = _project(project)
    if not request.user.has_perm(OPERATE):
        messages.error(request, "You may not trigger sequences; ask an admin.")
        return redirect(reverse("environment", args=[project]))
    stage, sequence = (request.POST.get("target", "") + "|").split("|")[:2]
    missing = intake.unknown_target(found, stage, sequence)
    if missing:  # the form offers only what exists; a stale page gets told, and nothing is stored
        messages.error(request, missing)
        return redirect(reverse("environment", args=[project]))
    data = {"project": found.name, "stage": stage, "service": request.POST.get("service", "")}
    image, tag = request.POST.get("image", "").strip(), request.POST.get("tag", "").strip()
    errors = _trigger_errors(sequence, image, tag, request.POST.get("labels", ""))
    if errors:  # shown in place, with what was typed; nothing is stored
        values = {key: request.POST.get(key, "") for key in ("target", "service", "image", "tag", "labels")}
        return _environment_page(request, project, form={"values": values, "errors": errors}, status=400)
    if image:
        data["configurationChange"] = {"values": {"image": image_reference(image, tag)}}
    labels = {}
    for line in request.POST.get("labels", "").splitlines():
        if "=" in line:
            key, value = line.split("=", 1)
            labels[key.strip()] = value.strip()
    if labels:
        data["labels"] = labels
    receipt = intake.receive_event({"id": str(uuid.uuid4()), "source": f"bridge ({request.user.get_username()})",
                                  "specversion": "1.0", "type": f"sh.keptn.event.{stage}.{sequence}.triggered",
                                  "data": data}, sent_by=request.user.get_username())
    if receipt.code >= 300:
        messages.error(request, receipt.message)
        return redirect(reverse("environment", args=[project]))
    messages.success(request, f"Triggered {sequence} of {data['service']} in {stage}.")
    return redirect(reverse("sequence", args=[project, receipt.keptn_context]))


@login_required
def tokens(request):
    if request.method == "POST":
        name = request.POST.get("name", "").strip()
        if not name or len(name) > 100:
            messages.error(request, "Give the token a name (at most 100 characters).")
        else:
            _, plaintext = ApiToken.issue(request.user, name)
            return render(request, "bridge/tokens.html", page_context(request, tokens=request.user.api_tokens.all(),
                                                               new_token=plaintext, new_name=name))
        return redirect("tokens")
    return render(request, "bridge/tokens.html", page_context(request, tokens=request.user.api_tokens.all()))


@login_required
@require_POST
def revoke_token(request, token_id):
    token = get_object_or_404(ApiToken, pk=token_id, user=request.user)
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        messages.success(request, f"Token '{token.name}' is revoked.")
    return redirect("tokens")


def metrics(request):
    """Prometheus metrics: with an API token (x-token or Bearer), or open with BOSUN_METRICS_PUBLIC=true."""
    if not settings.METRICS_PUBLIC:
        header = request.headers.get("authorization", "")
        key = request.headers.get("x-token") or (header[7:] if header.lower().startswith("bearer ") else "")
        try:
            token = authenticate(request, key) if key else None
        except throttle.Throttled as exc:
            response = HttpResponse(exc.message + "\n", status=429, content_type="text/plain")
            response["Retry-After"] = str(exc.retry_after)
            return response
        if token is None:
            if key:
                throttle.token_failed(request)
            response = HttpResponse("An API token is required: send it as x-token or Authorization: Bearer.\n",
                                    status=401, content_type="text/plain")
            response["WWW-Authenticate"] = "Bearer"
            return response
    return HttpResponse(generate_latest(REGISTRY), content_type=CONTENT_TYPE_LATEST)
