"""Trials on other machines: the Ray runner, and the files a trial takes there and brings back.

Owns everything that talks to Ray (imported only when `--runner ray` is chosen: preview, apply,
inspect and the hook never load it). A trial on the cluster runs the same harness, through the
same local runner, in a staging folder on whichever node Ray picks; its inputs travel as bytes
and its outputs stream back into the trial's own folder here, so the ledger, resume and report
see what they see with any other runner. Imports training (the Runner interface, the local
runner it reuses on the node) and `mutator.errors`.
"""
