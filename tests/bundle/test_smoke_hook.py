"""The app's smoke hook (GRISTMILL_SMOKE_QUIT_MS): report on the window, then quit on its own.

The bundle test drives the frozen app with it; here it runs from the checkout.
"""

from __future__ import annotations

import json
import shutil

import pytest

from gristmill.app import main, resources


def _report(out: str) -> dict:
    lines = [line for line in out.splitlines() if line.startswith(main.SMOKE_PREFIX)]
    assert len(lines) == 1, out
    return json.loads(lines[0][len(main.SMOKE_PREFIX):])


@pytest.mark.parametrize("value", [None, "", "soon", "-1"])
def test_no_hook_without_a_valid_delay(value):
    environ = {} if value is None else {main.SMOKE_QUIT_ENV: value}
    assert main.arm_smoke_quit(None, environ) is None        # the window is never touched


def test_first_start_shows_the_welcome_view_with_the_examples_and_quits(qapp, monkeypatch, capsys,
                                                                         gristmill_home):
    monkeypatch.setenv(main.SMOKE_QUIT_ENV, "200")
    assert main.run_app() == 0
    report = _report(capsys.readouterr().out)
    assert report["page"] == "welcome" and report["title"] == "Gristmill"
    assert report["examples"] == [p.name for p in resources.examples()]
    assert "pipeline" in report["examples"]
    assert report["window_icon"] is True
    assert report["resources"] == str(resources.resources_dir())
    assert (gristmill_home / "config").is_dir()              # settings went to GRISTMILL_HOME


def test_opens_a_workflow_saves_a_screenshot_and_quits(qapp, monkeypatch, capsys, tmp_path):
    example = tmp_path / "pipeline"
    shutil.copytree(resources.example("pipeline"), example, ignore=shutil.ignore_patterns("build"))
    shot = tmp_path / "shot.png"
    monkeypatch.setenv(main.SMOKE_QUIT_ENV, "300")
    monkeypatch.setenv(main.SMOKE_SCREENSHOT_ENV, str(shot))
    assert main.run_app(str(example)) == 0
    report = _report(capsys.readouterr().out)
    assert report["page"] == "workbench"
    assert report["title"] == "weather-pipeline — Gristmill"
    assert report["tasks"] == 10
    assert report["screenshot"] is True
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
