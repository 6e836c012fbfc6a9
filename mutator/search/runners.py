"""The runner a search trains its trials on, made before anything heavy is imported.

A local warm worker starts importing TensorFlow as soon as it is made (3-4 s): `mutate tune`
makes it first, before the engine (libcst, the rules) is imported and the script is read and
checked, so the first trial starts that much sooner. Nothing here imports libcst or Keras.
"""

from __future__ import annotations

from pathlib import Path

from mutator.search.config import TuneSettings, parallel_trials
from mutator.training.runner import Runner


def make_runner(settings: TuneSettings, script: Path | None = None) -> Runner:
    """The runner the settings ask for; a warm worker preloads what `script` imports."""
    from mutator.training.worker import preload_modules

    preload = preload_modules(script, [script.resolve().parent]) if script is not None else []
    if settings.runner.name == "docker":
        from mutator.containers.runner import DockerRunner

        return DockerRunner.from_settings(
            settings.docker, worker=settings.fast.worker, preload=preload
        )
    if settings.runner.name == "ray":
        from mutator.cluster.ray_runner import RayRunner

        return RayRunner(
            settings.ray.address,
            cpus=settings.ray.cpus,
            gpus=settings.ray.gpus,
            memory=settings.ray.memory,
            parallel=parallel_trials(settings),
            worker=settings.fast.worker,
            preload=preload,
            recycle=settings.fast.worker_recycle,
        )
    from mutator.training.local import LocalRunner

    if not settings.fast.worker:
        return LocalRunner()
    return LocalRunner(worker=True, preload=preload, recycle=settings.fast.worker_recycle)
