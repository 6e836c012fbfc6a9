"""Where trials train: the shared interface (`base`) and the runners that implement it.

`LocalRunner` is a subprocess on this machine; `mutator.runners.docker` (imported on demand, it
needs the Docker SDK) runs the same harness in a container.
"""

from mutator.runners.base import Runner, TrialResult, TrialSpec, TrialStatus, read_result
from mutator.runners.local import LocalRunner

__all__ = ["LocalRunner", "Runner", "TrialResult", "TrialSpec", "TrialStatus", "read_result"]
