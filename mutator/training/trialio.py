"""Small pieces every part of a trial shares: one-line errors and strict, atomic JSON files."""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any


def one_line_error(error: BaseException) -> str:
    """`Type: first line of the message`, short enough for a ledger row."""
    if isinstance(error, SystemExit):
        return f"SystemExit: {error.code}"
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    message = lines[0] if lines else ""
    if message.endswith(":") and len(lines) > 1:
        # TensorFlow's "Graph execution error:" says where; the cause is its last plain line.
        causes = [line for line in lines[1:] if not line.startswith(("[[", "File ", "Detected at"))]
        message = f"{message} {causes[-1]}" if causes else message
    text = f"{type(error).__name__}: {message}" if message else type(error).__name__
    return text if len(text) <= 300 else text[:297] + "..."


def jsonable(value: Any) -> Any:
    """Strict JSON: NaN and infinities become null (status says "nan" where it matters)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(item) for item in value]
    return value


def write_json_atomically(path: Path, data: dict[str, Any]) -> None:
    """Readers see the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(jsonable(data), indent=2, allow_nan=False)
    with tempfile.NamedTemporaryFile(
        "w", encoding="utf-8", dir=path.parent, prefix=f".{path.stem}-", suffix=".tmp", delete=False
    ) as handle:
        handle.write(text + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.chmod(handle.name, 0o644)  # mkstemp's 0600 would hide a container's result from the host
    os.replace(handle.name, path)
