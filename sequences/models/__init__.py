"""Bosun's stored things (the storage layer's models): projects, services and lanes (catalog.py), sequence and
task executions and their logs (runs.py), the event log and the audit trail (history.py), API tokens
(tokens.py), freeze windows (freezes.py), and the receivers of Bosun's events: integrations and the errors they
report, webhooks and their deliveries (receivers.py). They may import sequences.rules only.
"""

from sequences.models.freezes import FreezeWindow
from sequences.models.history import ControlAction, Event
from sequences.models.catalog import Lane, Project, Service
from sequences.models.receivers import Delivery, Integration, IntegrationLog, Webhook
from sequences.models.runs import SequenceExecution, TaskExecution, TaskLog
from sequences.models.tokens import ApiToken

__all__ = ["ApiToken", "ControlAction", "Delivery", "Event", "FreezeWindow", "Integration", "IntegrationLog", "Lane",
           "Project", "SequenceExecution", "Service", "TaskExecution", "TaskLog", "Webhook"]
