"""mutator: improve a Keras model by rewriting its training script, one careful change at a time.

Its rooms, top to bottom; each imports only what stands below it (tests/test_layout.py checks):

    cli/         the `mutate` command: parsing, handlers, rendering, the pre-commit hook
    publish/     after the search: commit best.py back, notify by email and webhook
    search/      settings, the hill-climb, the ledger it is rebuilt from, tune, the report
    cluster/     Ray: trials as tasks on a cluster, their files shipped there and streamed back
    containers/  Docker: which image, building images, the Docker runner, the monitor
    training/    one trial: the harness inside it, the Runner interface and the local runner
    api.py       where the rules meet the engine: load a script, propose, choose, rewrite
    rules/       (beside this package) one mutation rule per module, and the default order
    engine/      parse a script, locate its model and epochs, apply a candidate, verify, diff
    errors.py    the exceptions every room raises, each with its exit code
"""

__version__ = "0.1.0"
