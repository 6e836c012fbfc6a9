"""A folder as bytes, and a folder kept in step with one on another machine.

A trial on a Ray node cannot read this machine's disk. What it needs (the trial folder's
inputs, the script's own folder for helper modules and data files, the parent's weights) is
packed into `relative path -> bytes` and put in Ray's object store; what the trial writes
(log, epoch checkpoints, model, metrics.json) comes back as `Changes` while it trains, so that a
node lost mid-trial leaves its last checkpoint here, where a retry on another node starts from.

Nothing here imports Ray: packing, watching and applying are plain file work, tested as such.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from mutator.errors import MutatorError

PackedFolder = dict[str, bytes]

# Never shipped from the script's folder: version control, environments, caches, our run dirs.
SKIPPED_NAMES = frozenset(
    {
        ".git",
        ".hg",
        ".mutator",
        ".venv",
        "venv",
        "__pycache__",
        "node_modules",
        ".ipynb_checkpoints",
        ".pytest_cache",
        ".hypothesis",
        ".ruff_cache",
    }
)
PACK_LIMIT = 200 * 2**20  # bytes; a folder this big belongs on storage every node mounts
LAST_FILES = ("metrics.json",)  # written after everything else: its presence means "finished"


class FolderTooLargeError(MutatorError):
    """A folder to ship to the cluster is over the limit (data belongs on shared storage)."""

    exit_code = 7


@dataclass
class Changes:
    """What became of a folder since the last look: whole files, log growth, and removals."""

    written: dict[str, bytes] = field(default_factory=dict)
    appended: dict[str, bytes] = field(default_factory=dict)
    deleted: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.written or self.appended or self.deleted)


def pack_folder(
    folder: Path,
    *,
    skip_paths: Iterable[Path] = (),
    skip_files: Iterable[str] = (),
    limit: int = PACK_LIMIT,
) -> PackedFolder:
    """Every file under `folder` but the skipped ones, by path relative to it.

    `skip_paths` are folders left out wherever they sit (the run directory, when it lies inside
    the script's folder); `skip_files` are relative paths left out (what the receiver makes
    itself). Over `limit` bytes in all is a one-line error naming the folder.
    """
    root = folder.resolve()
    skipped = {Path(path).resolve() for path in skip_paths}
    leave_out = set(skip_files)
    packed: PackedFolder = {}
    total = 0
    for current, folders, files in os.walk(root):
        here = Path(current)
        folders[:] = sorted(
            name for name in folders if name not in SKIPPED_NAMES and here / name not in skipped
        )
        for name in sorted(files):
            path = here / name
            relative = path.relative_to(root).as_posix()
            if relative in leave_out or not path.is_file():
                continue
            data = path.read_bytes()
            total += len(data)
            if total > limit:
                raise FolderTooLargeError(
                    f"{root} holds over {limit // 2**20} MB to ship to the cluster; put large "
                    "data on storage every node mounts and read it from there"
                )
            packed[relative] = data
    return packed


def unpack_folder(files: PackedFolder, folder: Path) -> None:
    """Write a packed folder out under `folder` (which may already exist)."""
    for relative, data in files.items():
        target = _inside(folder, relative)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)


class FolderWatch:
    """Reports what changed in a folder since it last looked (or since it was made).

    Files named in `append_only` (the log) are sent as what was added to them, not whole; every
    other file is sent whole whenever its size or modification time moved. A file caught while
    being written is sent again at the next look, since its stat moves once more.
    """

    def __init__(self, folder: Path, append_only: Iterable[str] = ("log.txt",)) -> None:
        self.folder = folder
        self.append_only = frozenset(append_only)
        self._seen = self._stats()
        self._offsets = {
            name: self._seen[name][0] for name in self.append_only if name in self._seen
        }

    def changes(self) -> Changes:
        now = self._stats()
        found = Changes(deleted=sorted(set(self._seen) - set(now)))
        for relative, stat in now.items():
            if self._seen.get(relative) == stat:
                continue
            path = self.folder / relative
            if relative in self.append_only:
                grown = self._grown(relative, path)
                if grown:
                    found.appended[relative] = grown
                continue
            try:
                found.written[relative] = path.read_bytes()
            except OSError:
                now.pop(relative)  # gone between the listing and the read: look again later
        self._seen = now
        return found

    def _grown(self, relative: str, path: Path) -> bytes:
        offset = self._offsets.get(relative, 0)
        try:
            with path.open("rb") as handle:
                handle.seek(0, 2)
                if handle.tell() < offset:
                    offset = 0  # truncated: what is there now is all new
                handle.seek(offset)
                data = handle.read()
        except OSError:
            return b""
        self._offsets[relative] = offset + len(data)
        return data

    def _stats(self) -> dict[str, tuple[int, int]]:
        stats: dict[str, tuple[int, int]] = {}
        for current, _folders, files in os.walk(self.folder):
            for name in files:
                if name.startswith(".") and name.endswith(".tmp"):
                    continue  # an atomic write in progress; its result is what counts
                path = Path(current) / name
                with contextlib.suppress(OSError):
                    stat = path.stat()
                    stats[path.relative_to(self.folder).as_posix()] = (
                        stat.st_size,
                        stat.st_mtime_ns,
                    )
        return stats


def apply_changes(changes: Changes, folder: Path) -> None:
    """Bring `folder` in step: removals, then whole files (each atomically), then log growth,
    and `metrics.json` last, so a reader that finds it finds everything it describes."""
    for relative in changes.deleted:
        target = _inside(folder, relative)
        with contextlib.suppress(FileNotFoundError):
            target.unlink()
        _remove_empty_parents(target.parent, folder)
    ordered = sorted(changes.written.items(), key=lambda item: item[0] in LAST_FILES)
    last = [(relative, data) for relative, data in ordered if relative in LAST_FILES]
    for relative, data in ordered:
        if relative not in LAST_FILES:
            _write_atomically(_inside(folder, relative), data)
    for relative, data in changes.appended.items():
        target = _inside(folder, relative)
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("ab") as handle:
            handle.write(data)
    for relative, data in last:
        _write_atomically(_inside(folder, relative), data)


def _inside(folder: Path, relative: str) -> Path:
    """`folder / relative`, refusing a path that would land outside it."""
    target = (folder / relative).resolve()
    if not target.is_relative_to(folder.resolve()):
        raise ValueError(f"{relative!r} is not inside {folder}")
    return target


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(
        dir=path.parent, prefix=f".{path.name}-", suffix=".tmp", delete=False
    ) as handle:
        handle.write(data)
    os.chmod(handle.name, 0o644)
    os.replace(handle.name, path)


def _remove_empty_parents(folder: Path, stop: Path) -> None:
    stop = stop.resolve()
    folder = folder.resolve()
    while folder != stop and folder.is_relative_to(stop):
        try:
            folder.rmdir()
        except OSError:
            return
        folder = folder.parent
