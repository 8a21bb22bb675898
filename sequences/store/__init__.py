"""Storage: transactions and the signals sent after a commit (db), locks on lanes and tasks, the queries of
lanes, prepared hot-path queries, and the throttle's counters in the cache. Modules here may import
sequences.rules and sequences.models.
"""
