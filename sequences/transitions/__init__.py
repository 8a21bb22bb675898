"""The transitions: every change of state of a sequence or a task, and the audit row it writes. Events arrive
(arrivals), executors claim and report (claims), people give commands (commands), timers fire (timeouts),
and flow (with tasks and policies) moves sequences and tasks as sequences.rules.machine allows. Modules here may
import sequences.rules, sequences.models, sequences.store and sequences.notices; the API, the Bridge, admin
and the engine call them.
"""
