"""Bosun's control plane, in layers; each imports only from the layers below it.

- rules/: the state machine, the timers, what a person is shown, Keptn's formats (no database);
- models/: what is stored;
- store/: transactions, locks, lane queries, prepared hot-path queries;
- notices/: metrics, traces and webhooks that tell the world about a change;
- transitions/: every change of state, and the audit row it writes;
- configuration.py, registrations.py, integration_logs.py, engine.py, demo.py: projects and services, Keptn's
  uniform and the errors its integrations report, the engine, the demo;
- api/ and admin.py (and the Bridge, in bridge/): the interfaces people and clients use.

docs/architecture.md draws them and follows a trigger and a control command through them.
"""
