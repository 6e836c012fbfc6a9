"""The CNN fixture made slow on purpose, for tests that must catch trials in flight."""

from __future__ import annotations

from pathlib import Path

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "cnn_digits.py"


def slow_epochs(pause: float, epochs: int = 2) -> str:
    """cnn_digits.py with `epochs` epochs, each ending in a `pause`-second sleep.

    The sleep, not more data, makes the trial long: a kill or a cancel lands mid-fit on any
    machine, while the model and its metric stay those of the fixture.
    """
    return (
        FIXTURE.read_text()
        .replace("import keras\n", "import time\nimport keras\n", 1)
        .replace(
            "verbose=2)",
            "verbose=2,\n    callbacks=[keras.callbacks.LambdaCallback("
            f"on_epoch_end=lambda epoch, logs: time.sleep({pause}))])",
            1,
        )
        .replace("epochs=2", f"epochs={epochs}")
    )
