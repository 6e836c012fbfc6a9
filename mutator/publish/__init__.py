"""After the search: commit the best script back to git, and tell people how the run went.

Owns push-back (branch, commit message), notifications (email, webhook) and tracking in MLflow
(`tracking`, handed to the search as its tracker). Imports the search (ledger, settings) and what
stands below it; never the command line.
"""
