"""gristmill.app.resources finds resources/ the same way in a source checkout and in a bundle.

The bundle case is faked here (sys.frozen, sys._MEIPASS); test_bundle_build.py
checks it in a real bundle.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from gristmill.app import resources

ROOT = Path(__file__).resolve().parents[2]


def test_a_checkout_uses_the_repository_folder():
    assert not resources.is_frozen()
    assert resources.resources_dir() == ROOT / "resources"
    assert resources.icon_path("gristmill.svg") == ROOT / "resources" / "icons" / "gristmill.svg"
    assert resources.icon_path("no-such-icon.svg") is None
    names = [p.name for p in resources.examples()]
    assert "pipeline" in names and names == sorted(names)
    assert resources.example("pipeline") == ROOT / "resources" / "examples" / "pipeline"
    assert resources.example("no-such-example") is None


@pytest.fixture
def fake_bundle(tmp_path, monkeypatch):
    """A bundle folder as PyInstaller lays it out: resources/ under sys._MEIPASS."""
    internal = tmp_path / "Gristmill" / "_internal"
    (internal / "resources" / "icons").mkdir(parents=True)
    (internal / "resources" / "icons" / "gristmill.svg").write_text("<svg/>")
    for name in ("zeta", "alpha", ".hidden"):
        (internal / "resources" / "examples" / name).mkdir(parents=True)
    (internal / "resources" / "examples" / "not-a-folder.txt").write_text("x")
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "_MEIPASS", str(internal), raising=False)
    return internal


def test_a_bundle_uses_the_folder_inside_it(fake_bundle):
    assert resources.is_frozen()
    assert resources.candidates() == [fake_bundle / "resources"]
    assert resources.resources_dir() == fake_bundle / "resources"
    assert resources.icon_path("gristmill.svg") == fake_bundle / "resources" / "icons" / "gristmill.svg"
    assert [p.name for p in resources.examples()] == ["alpha", "zeta"]
    assert resources.example("zeta") == fake_bundle / "resources" / "examples" / "zeta"


def test_a_bundle_without_resources_never_falls_back_to_a_checkout(fake_bundle):
    import shutil
    shutil.rmtree(fake_bundle / "resources")
    assert resources.resources_dir() is None             # not the repository's folder
    assert resources.icon_path("gristmill.svg") is None
    assert resources.examples() == [] and resources.example("pipeline") is None


def test_frozen_needs_both_markers(monkeypatch, tmp_path):
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.delattr(sys, "_MEIPASS", raising=False)
    assert not resources.is_frozen()
    assert resources.resources_dir() == ROOT / "resources"
