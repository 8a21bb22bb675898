from sequences.models import SequenceExecution, TaskExecution


def run_of(context, stage="dev", name="delivery") -> SequenceExecution:
    return SequenceExecution.objects.get(context=context, stage=stage, name=name)


def current_task(context, stage="dev", name="delivery") -> TaskExecution:
    return run_of(context, stage, name).task_executions.order_by("-index").first()
