"""Docker: which image a script needs, the images, the Docker runner and the restart monitor.

Owns everything that talks to a Docker engine (the SDK is imported only when a function needs
it). Imports training (the Runner interface it implements), the engine and `mutator.errors`.
"""
