"""The engine: read a training script, find its model and where its epochs live, apply one change.

Owns parsing, name resolution, the model view, candidates, the rewrite, its verification and diff.
Imports only libcst and `mutator.errors`: never the search, training, containers or Keras.
"""
