"""The search: settings, the hill-climb, the ledger it is rebuilt from, `tune`, and the report.

Owns every decision about which trial runs next and what is kept. Imports `mutator.api` (rules
and the engine), training, containers and cluster (the runners), never publish or the command line.
"""
