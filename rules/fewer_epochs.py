"""fewer_epochs: stop training sooner, where the number of epochs is really written."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from mutator.engine.callargs import integer
from mutator.engine.candidate import Candidate, Proposal, Replace, Skip
from mutator.engine.model_view import ModelView
from rules._rule import Example, Road, WarmMapping
from rules._style import shared_with_layers

_IMPORTS = "from keras.models import Sequential\nfrom keras.layers import Dense\n"
_MODEL = _IMPORTS + "model = Sequential()\nmodel.add(Dense(10, input_dim=64))\n"


@dataclass(frozen=True)
class FewerEpochs:
    """Divide the epochs by `factor`, or cut them to `to_epochs`, never below `min_epochs`.

    Why: a model whose validation loss was lowest long before the last epoch has spent the
    epochs after it memorising its training data (a regression MLP: val MSE best at epoch 9 of
    100, twice that at the end). Stopping where it was best is the engineer's first cure, and
    the cheapest one: the trial costs a fraction of its parent. The search fills `to_epochs`
    from the best trial's validation curve (`Diagnosis.best_epoch`); without one, the epochs
    are divided by `factor`. Safety: as for `more_epochs`, the number is changed where it is
    defined, never guessed; a computed number or one the model's layers also read is left alone.
    """

    factor: int = 2
    to_epochs: int | None = None  # set by the search from the validation curve
    min_epochs: int = 1

    name: ClassVar[str] = "fewer_epochs"
    road: ClassVar[Road] = "regularisation"
    step_setting: ClassVar[str | None] = "factor"
    warm: ClassVar[WarmMapping] = "cold"
    cold_why: ClassVar[str] = (
        "fewer epochs: the parent's weights already trained past them, so the child starts over"
    )
    description: ClassVar[str] = (
        "train for fewer epochs (to where validation was best, else /2), where epochs are defined"
    )
    examples: ClassVar[tuple[Example, ...]] = (
        Example(_MODEL + "model.fit(x, y, epochs=10)\n", _MODEL + "model.fit(x, y, epochs=5)\n"),
        Example(
            "EPOCHS = 100  # long\n" + _MODEL + "model.fit(x, y, epochs=EPOCHS)\n",
            "EPOCHS = 50  # long\n" + _MODEL + "model.fit(x, y, epochs=EPOCHS)\n",
        ),
        Example(
            _MODEL + "model.fit(x, y, nb_epoch=9)\n", _MODEL + "model.fit(x, y, nb_epoch=4)\n"
        ),
    )
    no_match: ClassVar[tuple[str, ...]] = (
        _MODEL,  # epochs not written: Keras trains 1, and there is no fewer
        _MODEL + "model.fit(x, y, epochs=1)\n",
        _MODEL + "model.fit(x, y, epochs=config.epochs)\n",  # no defaults dict to read it from
        _MODEL + "model.fit(x, y, epochs=steps(n) * 2)\n",  # computed: not cut
        _IMPORTS + "N = 10\nmodel = Sequential()\nmodel.add(Dense(N, input_dim=64))\n"
        "model.fit(x, y, epochs=N)\n",
    )

    def propose(self, view: ModelView) -> list[Proposal]:
        site = view.epochs
        if site is None:
            return [Skip(self.name, 0, f"no .fit() call trains {view.name}")] if view.notes else []
        if site.kind == "expression":
            return [Skip(self.name, 0, f"epochs are computed ({site.detail}): not cut")]
        if site.node is None or site.value is None:
            why = "epochs are not written (Keras trains 1)" if site.kind == "default" else site.detail
            return [Skip(self.name, 0, why)]
        shared = shared_with_layers(view, site.names)
        if shared is not None:
            return [Skip(self.name, 0, shared)]
        old = site.value
        wanted = self.to_epochs if self.to_epochs is not None else old // max(2, self.factor)
        new = max(self.min_epochs, wanted)
        if old <= self.min_epochs:
            return [Skip(self.name, 0, f"{old} epoch(s) is already at the floor ({self.min_epochs})")]
        if new >= old:
            return [Skip(self.name, 0, f"{old} epoch(s) is already at or below {new}")]
        return [
            Candidate(
                self.name,
                0,
                {"epochs": [old, new]},
                f"epochs {old} -> {new} ({site.detail})",
                (Replace(site.node, integer(new)),),
            )
        ]
