import json

from sequences.models import ControlAction, Event, Project, SequenceExecution, TaskExecution

SE, TE = SequenceExecution, TaskExecution


def run_of(context, stage="dev", name="delivery") -> SequenceExecution:
    return SequenceExecution.objects.get(context=context, stage=stage, name=name)


def current_task(context, stage="dev", name="delivery") -> TaskExecution:
    return run_of(context, stage, name).task_executions.order_by("-index", "-id").first()  # its latest attempt


def one_stage_shipyard(name: str, tasks: list[dict]) -> str:
    """A shipyard with stage dev and its sequence delivery running these tasks (each a dict, as YAML flow)."""
    lines = "\n".join("            - " + json.dumps(task) for task in tasks)
    return ("apiVersion: spec.keptn.sh/0.2.3\nkind: Shipyard\nmetadata: {name: %s}\nspec:\n  stages:\n"
            "    - name: dev\n      sequences:\n        - name: delivery\n          tasks:\n%s\n" % (name, lines))


# --- for tests of bad input: nested payloads, trigger bodies, what is stored ---


def nested(levels: int) -> dict:
    """{"a": {"a": ... {}}}: `levels` objects deep."""
    value: dict = {}
    for _ in range(levels - 1):
        value = {"a": value}
    return value


def trigger_body(**data) -> dict:
    return {"type": "sh.keptn.event.dev.delivery.triggered", "source": "attacker",
            "data": {"project": "sockshop", "stage": "dev", "service": "carts", **data}}


class Snapshot:
    """What is stored: counts of everything a request could change."""

    def __init__(self):
        self.counts = (Event.objects.count(), SE.objects.count(), TE.objects.count(), ControlAction.objects.count(),
                       Project.objects.count())
        self.states = list(SE.objects.order_by("id").values_list("state", flat=True))

    def unchanged(self) -> bool:
        return Snapshot().__dict__ == self.__dict__


def finish_all(api, context):
    while (task := current_task(context)) is not None and task.is_open:
        api.finish(task)


def task_started(task, source="executor", **extra):
    return {"type": f"sh.keptn.event.{task.name}.started", "source": source, "triggeredid": task.triggered_id,
            "shkeptncontext": task.sequence_execution.context, "data": {}, **extra}
