"""mutator: improve a Keras model by rewriting its training script, one careful change at a time."""

__version__ = "0.1.0"
