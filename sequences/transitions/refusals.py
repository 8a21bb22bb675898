"""A trigger of a stage or sequence the shipyard does not have. As Keptn does, Bosun accepts it and ends it at
once, so a script waiting for its `.finished` ends too."""

from django.utils import timezone

from sequences.models import SequenceExecution
from sequences.notices import metrics as observe
from sequences.rules import cloudevents as ev
from sequences.store.db import announce
from sequences.store.prepared import save
from sequences.transitions.eventlog import emit
from sequences.transitions.moves import enter


def refuse_sequence(project, stage, name, service, data, context, triggered_id, gitcommitid, message):
    """A sequence execution finished (fail, errored) that takes no lane and has no task, and a .finished that
    says what exists."""
    execution = SequenceExecution(
        root=not SequenceExecution.objects.filter(project=project, context=context).exists(), project=project,
        stage=stage, service=service, name=name[:100], context=context, triggered_id=triggered_id,
        gitcommitid=gitcommitid, input_data=data, tasks=[], result="fail", status="errored", message=message,
        ended_at=timezone.now())
    enter(execution, "refuse")
    save(execution)
    observe.transition("sequence.finished", execution, result="fail", status="errored", message=message)
    emit(ev.sequence_type(stage, name, "finished"), {**data, "result": "fail", "status": "errored",
                                                      "message": message}, context, triggered_id, gitcommitid)
    announce(project.name, context, stage=stage, service=service)
    return execution
