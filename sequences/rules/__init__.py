"""Rules and formats, with no database: the state machine of sequences and tasks, what a person is shown of a
run (outcomes), the timers, Keptn's CloudEvents and shipyards, job definitions, and which addresses webhooks
may reach. Modules here import nothing of Bosun outside sequences.rules (Django's settings and utilities only).
"""
