"""Keptn's `TriggerEvaluation` (`keptn trigger evaluation`): a stage's evaluation sequence for a service, with
Keptn's evaluation data, through the same intake as any event."""

from ninja import Field, Router, Schema, Status
from ninja.errors import HttpError

from sequences.api.auth import OPERATE, actor, require
from sequences.api.params import project_or_404
from sequences.api.schemas import answers
from sequences.transitions import arrivals as intake

router = Router(tags=["Evaluation"])


class EvaluationParams(Schema):
    """Keptn's models.CreateEvaluationParams."""

    start: str = Field("", max_length=40, description="e.g. 2021-01-02T15:00:00")
    end: str = Field("", max_length=40)
    timeframe: str = Field("", max_length=20, description="e.g. 5m (not with end)")
    labels: dict[str, str] = Field(default_factory=dict)
    gitcommitid: str = Field("", max_length=100)


@router.post("/project/{project}/stage/{stage}/service/{service}/evaluation",
             summary="Trigger an evaluation of a service in a stage (as `keptn trigger evaluation` does)",
             **answers({200: {"type": "object", "required": ["keptnContext"],
                              "properties": {"keptnContext": {"type": "string"}}}}, 403, 404))
def trigger_evaluation(request, project: str, stage: str, service: str, payload: EvaluationParams):
    """The stage's `evaluation` sequence (every stage has one), with Keptn's evaluation data."""
    require(request, OPERATE)
    if payload.end and payload.timeframe:
        raise HttpError(400, "end and timeframe cannot both be given: give start and end, or a timeframe "
                             "(with or without start).")
    if payload.end and not payload.start:
        raise HttpError(400, "end needs a start.")
    found = project_or_404(project)
    if found.parsed_shipyard().stage(stage) is None:
        raise HttpError(404, f"Stage '{stage}' does not exist in project '{project}'.")
    window = {key: value for key, value in (("start", payload.start), ("end", payload.end),
                                              ("timeframe", payload.timeframe)) if value}
    event = {"specversion": "1.0", "source": "bosun-api", "type": f"sh.keptn.event.{stage}.evaluation.triggered",
             "data": {"project": project, "stage": stage, "service": service, "labels": payload.labels,
                      "evaluation": window}}
    if payload.gitcommitid:
        event["gitcommitid"] = payload.gitcommitid
    receipt = intake.receive_event(event, sent_by=actor(request))
    if receipt.code >= 300:
        raise HttpError(receipt.code, receipt.as_json().get("message", "The evaluation could not be triggered."))
    return Status(200, {"keptnContext": receipt.as_json()["keptnContext"]})
