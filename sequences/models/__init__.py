"""Bosun's stored things (the storage layer's models): projects, lanes, sequence and task executions, the event
log, the audit trail, API tokens (runs.py), freeze windows (freezes.py), and the receivers of Bosun's events: integrations and the errors they report, webhooks and
their deliveries (receivers.py). They may import sequences.rules only.
"""

from sequences.models.freezes import FreezeWindow
from sequences.models.receivers import Delivery, Integration, IntegrationLog, Webhook
from sequences.models.runs import (ApiToken, ControlAction, Event, Lane, Project, SequenceExecution, Service,
                                   TaskExecution, TaskLog)

__all__ = ["ApiToken", "ControlAction", "Delivery", "Event", "FreezeWindow", "Integration", "IntegrationLog", "Lane", "Project", "SequenceExecution",
           "Service", "TaskExecution", "TaskLog", "Webhook"]
