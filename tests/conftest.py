"""Shared test setup: Qt offscreen, and every Gristmill path in a temp dir."""

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def gristmill_home(tmp_path_factory, monkeypatch):
    """Settings, history and logs of each test live in a fresh temp dir."""
    home = tmp_path_factory.mktemp("gristmill-home")
    monkeypatch.setenv("GRISTMILL_HOME", str(home))
    return home
