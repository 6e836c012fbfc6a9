"""Where a `fit` call's epochs really come from, so `more_epochs` edits the one place the number is
written: a literal (`epochs=` or Keras 1's `nb_epoch=`), a constant, a variable, a parameter's
default, an argparse default, an absl flag's default (`flags.DEFINE_integer("epochs", 10, ...)`
read as `FLAGS.epochs`), a defaults dict (`dict(epochs=27)` read as `config.epochs`), or an
expression (`int(math.ceil(12 / n))`), which is multiplied, never evaluated. The way there is
`mutator.engine.follow`'s, shared with the learning rate and the batch size."""

from __future__ import annotations

from dataclasses import replace

import libcst as cst

from mutator.engine.callargs import find_arg, literal_int
from mutator.engine.facts import FitCall, ScriptFacts
from mutator.engine.follow import Reading, Use, follow
from mutator.engine.model_view import EpochsSite

# Keras binds fit(x, y, batch_size, epochs, ...) and fit_generator(generator, steps, epochs, ...).
_EPOCHS_POSITION = {"fit": 3, "fit_generator": 2}
_EPOCHS = Reading("epochs", literal_int, "the fit call")


def resolve_epochs(fit: FitCall, facts: ScriptFacts) -> EpochsSite:
    call = fit.call
    method = call.func.attr.value if isinstance(call.func, cst.Attribute) else "fit"
    arg = find_arg(call, _EPOCHS_POSITION.get(method, 3), "epochs", "nb_epoch")
    if arg is None:
        return EpochsSite("default", 1, None, call, "not given: Keras trains 1 epoch")
    found = follow(arg.value, Use(fit.scope, fit.order), facts, _EPOCHS)
    site = EpochsSite(found.kind, found.value, found.node, call, found.detail, found.names)
    if arg.keyword is not None and arg.keyword.value == "nb_epoch" and site.kind == "literal":
        return replace(site, detail=site.detail.replace("epochs=", "nb_epoch=", 1))  # Keras 1
    return site
