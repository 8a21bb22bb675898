"""Freeze windows: list, create and delete a project's windows; let one sequence through a freeze."""

import json

from ninja import Field, Header, Router, Schema, Status
from ninja.errors import HttpError
from pydantic import ConfigDict

from sequences import configuration, freeze_config
from sequences.api.auth import MANAGE, PASS_FREEZES, actor, require
from sequences.api.control import command_actor
from sequences.api.params import project_or_404
from sequences.api.schemas import CONTROL_ANSWER, FREEZE_WINDOW, FREEZE_WINDOWS, MESSAGE, answers
from sequences.rules import windows
from sequences.transitions import holds

router = Router(tags=["Freeze windows"])


class CreateWindow(Schema):
    """What the API documents; the body is read and checked by sequences/rules/windows.py (each error names
    its field), after the permission."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(max_length=windows.MAX_NAME, description="The window's name, unique in its project")
    reason: str = Field("", max_length=windows.MAX_REASON, description="Why deliveries are held")
    stages: list[str] | None = Field(None, description="The stages it freezes; absent: every stage")
    services: list[str] | None = Field(None, description="The services it freezes; absent: every service")
    start: str | None = Field(None, description="A one-off window's start (ISO 8601; without an offset: in timeZone)")
    end: str | None = Field(None, description="A one-off window's end")
    cron: str | None = Field(None, max_length=windows.MAX_CRON,
                             description="A recurring window's starts: minute hour day month weekday, in timeZone")
    duration: str | float | None = Field(None, description="A recurring window's length: 2h, 90m, 2d12h")
    timeZone: str = Field("UTC", max_length=64, description="A time zone name such as Europe/Vienna")
    running: str = Field(windows.HOLD, description="hold: running sequences hold at their next task; finish: they "
                                                   "run to their end")


class LetThrough(Schema):
    stage: str = Field(min_length=1, max_length=100, description="The stage whose sequence passes the freeze")
    reason: str = Field(min_length=1, max_length=2000, description="Required: why it may pass (audited)")


def _call(function, *args, **kwargs):
    try:
        return function(*args, **kwargs)
    except configuration.ProjectError as exc:
        raise HttpError(exc.code, exc.message) from None


@router.get("/project/{project}/freeze", **answers({200: FREEZE_WINDOWS}, 404),
            summary="A project's freeze windows: those on now, upcoming and over")
def list_windows(request, project: str):
    return {"windows": freeze_config.windows_of(project_or_404(project))}


@router.post("/project/{project}/freeze",
             **answers({201: FREEZE_WINDOW}, 403, 404, 409, extra={"requestBody": {"required": True, "content": {
                 "application/json": {"schema": CreateWindow.model_json_schema()}}}}),
             summary="Create a freeze window: one-off (start, end) or recurring (cron, duration, timeZone)")
def create_window(request, project: str, source: str | None = Header(None, alias="X-Bosun-Source")):
    require(request, MANAGE)  # before the body is read: whoever may not gets 403 whatever they send
    found = project_or_404(project)
    try:
        body = json.loads(request.body or b"null")
    except ValueError:
        raise HttpError(400, "The request body is not valid JSON; send a JSON object.") from None
    who = command_actor(actor(request), source)
    window = _call(freeze_config.create_window, found, body, actor=who.name, source=who.source)
    return Status(201, freeze_config.window_json(window.rule()))


@router.delete("/project/{project}/freeze/{name}", **answers({200: MESSAGE}, 403, 404),
               summary="Delete a freeze window: what it held or kept waiting goes on now")
def delete_window(request, project: str, name: str, source: str | None = Header(None, alias="X-Bosun-Source")):
    require(request, MANAGE)
    found = project_or_404(project)
    who = command_actor(actor(request), source)
    _call(freeze_config.delete_window, found, name, actor=who.name, source=who.source)
    return {"message": f"Freeze window '{name}' of project '{project}' is deleted."}


@router.post("/sequence/{project}/{keptnContext}/let-through", **answers({200: CONTROL_ANSWER}, 403, 404, 409),
             summary="Let a context's sequence in a stage through a freeze window (audited, with its reason)")
def let_through(request, project: str, keptnContext: str, payload: LetThrough,
                idempotency_key: str = Header("", alias="Idempotency-Key"),
                source: str | None = Header(None, alias="X-Bosun-Source")):
    require(request, PASS_FREEZES)
    outcome = holds.let_through_command(project, keptnContext, actor=command_actor(actor(request), source),
                                        stage=payload.stage, reason=payload.reason, idempotency_key=idempotency_key)
    return Status(outcome.code, outcome.body)
