"""Running an ended sequence again: a new execution of the same sequence in its stage, with the input the
first one was triggered with, in the same context (or, for a whole delivery from its first stage, in a new
one). It is triggered as any sequence is: its `.triggered` event is in the event log, it queues in its lane
under the shipyard's queue policy as the shipyard has it now, and it links to the execution it runs again."""

import uuid

from sequences.models import Event, Project
from sequences.rules import cloudevents as ev
from sequences.transitions.eventlog import store_event
from sequences.transitions.flow import trigger_sequence


class RerunError(Exception):
    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code, self.message = code, message


def rerun(run, *, new_context: bool = False, sent_by: str = ""):
    """Trigger `run`'s sequence again in its stage (which the state machine allows once it has ended)."""
    project = Project.objects.get(pk=run.project_id)
    sequence = project.parsed_shipyard().sequence(run.stage, run.name)
    if sequence is None:
        raise RerunError(409, f"Stage '{run.stage}' of project '{project.name}' has no sequence '{run.name}' any "
                              "more (the shipyard changed): it cannot be re-run.")
    context = str(uuid.uuid4()) if new_context else run.context
    data = {**run.input_data, "project": project.name, "stage": run.stage, "service": run.service}
    payload = ev.make_event(ev.sequence_type(run.stage, run.name, "triggered"), data, context,
                            gitcommitid=run.gitcommitid)
    payload["source"] = "bosun (re-run)"
    store_event(payload, outcome=Event.EMITTED, context=context, sent_by=sent_by)
    return trigger_sequence(project, run.stage, sequence, run.service, data, context, payload["id"],
                            run.gitcommitid, new_context=new_context, rerun_of=run)
