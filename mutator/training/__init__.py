"""Training one trial: the harness inside the trial's process, the runners that start it outside.

Owns the harness (the user's script, Keras hooks, metrics.json), the Runner interface and the
local runner. Imports the engine and `mutator.errors`; Keras is imported only inside a trial.
"""
