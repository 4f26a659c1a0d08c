"""gristmill.frozen, the bundle's entry point: one executable for the app and the command."""

from __future__ import annotations

import sys

import pytest

from gristmill import __version__, frozen


@pytest.mark.parametrize("argv, headless", [
    ([], False), (["some/folder"], False), (["gristmill.toml"], False),
    (["run"], True), (["plan", "-C", "x"], True), (["graph"], True), (["history"], True),
    (["--version"], True), (["-h"], True),
])
def test_subcommands_and_options_are_headless_paths_open_the_app(argv, headless):
    assert frozen.is_headless(argv) is headless


def test_the_finder_process_serial_number_is_dropped():
    assert frozen.clean_argv(["-psn_0_12345"]) == []
    assert frozen.clean_argv(["-psn_0_1", "folder"]) == ["folder"]
    assert frozen.clean_argv(["run", "-j", "2"]) == ["run", "-j", "2"]


def test_streams_are_left_alone_off_windows():
    before = (sys.stdout, sys.stderr, sys.stdin)
    frozen.windows_streams(True)
    assert (sys.stdout, sys.stderr, sys.stdin) == before


def test_main_runs_the_command(monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["Gristmill", "-psn_0_1", "--version"])
    with pytest.raises(SystemExit) as exit_info:
        frozen.main()
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"gristmill {__version__}"
