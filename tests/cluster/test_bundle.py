"""Packing a folder for the cluster, watching one change, and bringing another in step."""

from __future__ import annotations

from pathlib import Path

import pytest

from mutator.cluster.bundle import (
    Changes,
    FolderTooLargeError,
    FolderWatch,
    apply_changes,
    pack_folder,
    unpack_folder,
)


def tree(root: Path, files: dict[str, str]) -> Path:
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_pack_leaves_out_caches_version_control_and_the_run_inside_the_folder(tmp_path):
    source = tree(
        tmp_path / "project",
        {
            "train.py": "print(1)",
            "helpers/data.py": "X = 1",
            "data/digits.csv": "1,2",
            ".git/HEAD": "ref",
            "__pycache__/train.cpython-311.pyc": "",
            ".mutator/train/ledger.jsonl": "{}",
            "runs/trials/0001/log.txt": "epoch",
        },
    )
    packed = pack_folder(source, skip_paths=[source / "runs"])
    assert sorted(packed) == ["data/digits.csv", "helpers/data.py", "train.py"]
    assert packed["helpers/data.py"] == b"X = 1"


def test_pack_skips_named_files_and_refuses_a_folder_over_the_limit(tmp_path):
    folder = tree(tmp_path / "trial", {"train.py": "x", "log.txt": "old", "metrics.json": "{}"})
    assert sorted(pack_folder(folder, skip_files={"log.txt", "metrics.json"})) == ["train.py"]
    (folder / "big.bin").write_bytes(b"0" * 2048)
    with pytest.raises(FolderTooLargeError, match="over 0 MB"):
        pack_folder(folder, limit=1024)


def test_unpack_writes_the_files_back_under_a_new_root(tmp_path):
    packed = pack_folder(tree(tmp_path / "a", {"x.py": "1", "sub/y.txt": "2"}))
    unpack_folder(packed, tmp_path / "b")
    assert (tmp_path / "b" / "sub" / "y.txt").read_text() == "2"


def test_a_watch_sees_new_changed_grown_and_removed_files_and_nothing_else(tmp_path):
    folder = tree(tmp_path / "trial", {"train.py": "x", "log.txt": "line 1\n", "keep.txt": "k"})
    watch = FolderWatch(folder)
    assert not watch.changes()  # what was there when it started is not news
    (folder / "log.txt").write_text("line 1\nline 2\n")
    (folder / "train.py").write_text("changed")
    tree(folder, {"checkpoint/fit-1.json": "{}"})
    (folder / ".metrics-abc.tmp").write_text("half")  # an atomic write in progress
    changes = watch.changes()
    assert changes.appended == {"log.txt": b"line 2\n"}
    assert changes.written == {"train.py": b"changed", "checkpoint/fit-1.json": b"{}"}
    assert changes.deleted == []
    (folder / "checkpoint" / "fit-1.json").unlink()
    assert watch.changes().deleted == ["checkpoint/fit-1.json"]
    assert not watch.changes()


def test_applying_changes_keeps_the_log_grows_it_and_removes_emptied_folders(tmp_path):
    here = tree(tmp_path / "here", {"log.txt": "runner note\n", "checkpoint/fit-1/w.h5": "w"})
    apply_changes(Changes(appended={"log.txt": b"Epoch 1/2\n"}), here)
    assert (here / "log.txt").read_text() == "runner note\nEpoch 1/2\n"
    apply_changes(Changes(deleted=["checkpoint/fit-1/w.h5"]), here)
    assert not (here / "checkpoint").exists() and here.exists()


def test_metrics_json_is_written_after_everything_it_describes(tmp_path, monkeypatch):
    order: list[str] = []
    real_replace = __import__("os").replace

    def recording_replace(source, target):
        order.append(Path(target).name)
        real_replace(source, target)

    monkeypatch.setattr("mutator.cluster.bundle.os.replace", recording_replace)
    written = {"metrics.json": b"{}", "model.keras": b"m", "history.json": b"[]"}
    apply_changes(Changes(written=written), tmp_path)
    assert order[-1] == "metrics.json" and sorted(order[:-1]) == ["history.json", "model.keras"]


def test_a_change_naming_a_path_outside_the_folder_is_refused(tmp_path):
    with pytest.raises(ValueError, match="not inside"):
        apply_changes(Changes(written={"../escaped.txt": b"x"}), tmp_path / "trial")
    assert not (tmp_path / "escaped.txt").exists()
