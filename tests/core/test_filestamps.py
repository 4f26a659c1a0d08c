"""FileStamps: one stat per path, and a folder's listing once many paths in it are asked."""

import os

from gristmill.core.decide import staleness
from gristmill.core.decide.staleness import FileStamps


def _many(folder, n):
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        (folder / f"f{i}").write_text("x")


def test_stamps_of_existing_and_missing_paths(tmp_path):
    _many(tmp_path / "d", 40)
    s = FileStamps(tmp_path)
    for i in range(40):
        assert s.get(f"d/f{i}") == os.stat(tmp_path / "d" / f"f{i}").st_mtime_ns
    for i in range(40, 80):                      # answered from the listing
        assert s.get(f"d/f{i}") is None
    assert s.get("nowhere/x") is None
    assert s.get(str(tmp_path / "d" / "f1")) is not None      # absolute paths too


def test_forget_sees_files_made_after_the_listing(tmp_path):
    _many(tmp_path / "d", 3)
    s = FileStamps(tmp_path)
    for i in range(staleness._LIST_AFTER + 2):          # enough misses to read the listing
        assert s.get(f"d/missing{i}") is None
    assert s.get("d/f1") is not None                   # in the listing: stat'ed
    assert s.get("d/new") is None
    (tmp_path / "d" / "new").write_text("made by a task")
    assert s.get("d/new") is None                # a snapshot until told otherwise
    s.forget(["d/new"])
    assert s.get("d/new") is not None


def test_forget_sees_a_folder_made_after_it_was_missing(tmp_path):
    s = FileStamps(tmp_path)
    for i in range(staleness._LIST_AFTER + 2):
        assert s.get(f"out/f{i}") is None
    _many(tmp_path / "out", 3)
    s.forget(["out/f1"])
    assert s.get("out/f1") is not None
    assert s.get("out/f2") is None               # not forgotten: still the snapshot


def test_a_folder_whose_paths_all_exist_is_never_listed(tmp_path, monkeypatch):
    _many(tmp_path / "d", 40)
    listed = []
    monkeypatch.setattr(staleness.os, "listdir", lambda p: listed.append(p) or [])
    s = FileStamps(tmp_path)
    assert all(s.get(f"d/f{i}") is not None for i in range(40))
    assert listed == []


def test_root_level_paths(tmp_path):
    _many(tmp_path, 30)
    s = FileStamps(tmp_path)
    assert all(s.get(f"f{i}") is not None for i in range(30))
    assert s.get("f99") is None
