"""What Bosun tells the world about a change: metrics and structured logs, traces, and webhooks (the outbox
written with the change, and the sender that posts it). Modules here may import sequences.rules,
sequences.models and sequences.store; they never change a sequence or a task.
"""
