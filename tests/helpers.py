import json

from sequences.models import SequenceExecution, TaskExecution


def run_of(context, stage="dev", name="delivery") -> SequenceExecution:
    return SequenceExecution.objects.get(context=context, stage=stage, name=name)


def current_task(context, stage="dev", name="delivery") -> TaskExecution:
    return run_of(context, stage, name).task_executions.order_by("-index").first()


def one_stage_shipyard(name: str, tasks: list[dict]) -> str:
    """A shipyard with stage dev and its sequence delivery running these tasks (each a dict, as YAML flow)."""
    lines = "\n".join("            - " + json.dumps(task) for task in tasks)
    return ("apiVersion: spec.keptn.sh/0.2.3\nkind: Shipyard\nmetadata: {name: %s}\nspec:\n  stages:\n"
            "    - name: dev\n      sequences:\n        - name: delivery\n          tasks:\n%s\n" % (name, lines))
