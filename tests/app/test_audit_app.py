"""The dependency audit in the app: Run > Audit Dependencies, Explain's findings, the
Audit Findings dialog and its edit of gristmill.toml (comments kept). Real strace."""

from __future__ import annotations

import shutil

import pytest

from conftest import wait_run_over

pytestmark = pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed")

TOML = """\
# Two tasks; t reads b.txt without saying so.
[tasks.t]
cmd = "cat a.txt b.txt > out.txt"
inputs = [
    "a.txt",  # the first half
]
outputs = ["out.txt"]

[tasks.quiet]
cmd = "cat a.txt > q.txt"
inputs = ["a.txt"]
outputs = ["q.txt"]
"""


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "wf"
    root.mkdir()
    (root / "gristmill.toml").write_text(TOML)
    (root / "a.txt").write_text("a\n")
    (root / "b.txt").write_text("b\n")
    return root


def test_audit_toggle_explain_and_the_findings_dialog(qtbot, make_window, folder):
    window = make_window()
    window.settings.trust(folder)
    assert window.open_path(str(folder))
    toggle = window.actions["audit"]
    assert toggle.isCheckable() and not toggle.isChecked()
    assert toggle in window.menus["&Run"].actions()
    toggle.trigger()
    assert toggle.isChecked() and window.bench.audit

    window.actions["run_default"].trigger()
    wait_run_over(qtbot, window)
    qtbot.waitUntil(lambda: set(window.bench.run.audits) == {"t", "quiet"}, timeout=10_000)

    window.selection.set(["t"], "test")
    window.actions["explain"].trigger()
    sections = dict(window.dialogs["explain"].sections)
    text = sections["Dependency audit"]
    assert text.startswith("Attempt 1 in the current run: 1 finding.")
    assert "read b.txt, which it does not declare" in text
    assert 'fix: [tasks.t] inputs += "b.txt"' in text
    assert "b.txt" in window.dialogs["explain"].text.toPlainText()
    window.selection.set(["quiet"], "test")       # Explain follows the selection
    assert "every file it read and wrote is declared" in \
        dict(window.dialogs["explain"].sections)["Dependency audit"]

    window.actions["audit_findings"].trigger()
    dialog = window.dialogs["audit"]
    assert dialog.view.topLevelItemCount() == 1
    item = dialog.view.topLevelItem(0)
    assert (item.text(0), item.text(2)) == ("t", '[tasks.t] inputs += "b.txt"')
    assert "2 tasks traced, 1 finding" in dialog.title.text()
    assert dialog.apply_button.isEnabled()
    dialog.apply_button.click()
    # Only the list changed: the comments and the layout stay as the user wrote them.
    assert (folder / "gristmill.toml").read_text() == TOML.replace(
        '    "a.txt",  # the first half\n', '    "a.txt",  # the first half\n    "b.txt",\n')
    qtbot.waitUntil(lambda: "b.txt" in window.bench.workflow.tasks["t"].inputs, timeout=10_000)
    assert not dialog.apply_button.isEnabled()
    assert dialog.view.topLevelItem(0).text(2).startswith("applied: ")


def test_explain_shows_the_findings_kept_in_history(qtbot, make_window, folder):
    """A later session, no run yet: Explain reads the task's last audit from history."""
    first = make_window()
    first.settings.trust(folder)
    first.open_path(str(folder))
    first.actions["audit"].trigger()
    first.actions["run_default"].trigger()
    wait_run_over(qtbot, first)
    run_id = first.bench.run.run_id
    first.bench.history.flush()
    later = make_window()
    later.open_path(str(folder))
    later.selection.set(["t"], "test")
    later.actions["explain"].trigger()
    text = dict(later.dialogs["explain"].sections)["Dependency audit"]
    assert text.startswith(f"Attempt 1 of run {run_id}: 1 finding.")
    assert "b.txt" in text
    later.actions["audit_findings"].trigger()
    assert later.dialogs["audit"].view.topLevelItemCount() == 1
    # A past run opened from Run History: its own findings (none: it was not audited).
    later.actions["audit"].trigger()
    later.actions["audit"].trigger()          # checked, then unchecked again
    assert not later.bench.audit
    later.settings.trust(folder)
    later.bench.start_run([], force=("t",))
    wait_run_over(qtbot, later)
    plain = later.bench.run.run_id
    assert plain != run_id and later.bench.run.audits == {}
    later.bench.history.flush()
    assert later.show_past_run(plain)
    later.actions["audit_findings"].trigger()
    assert later.dialogs["audit"].view.topLevelItemCount() == 0
    assert later.dialogs["audit"].title.text() == f"No task of run {plain} was audited."
    assert later.show_past_run(run_id)
    later.actions["audit_findings"].trigger()
    assert later.dialogs["audit"].view.topLevelItemCount() == 1


def test_without_strace_an_audited_run_is_refused_in_words(qtbot, make_window, folder,
                                                            monkeypatch, tmp_path):
    from gristmill.app import prompts
    window = make_window()
    window.settings.trust(folder)
    window.open_path(str(folder))
    window.actions["audit"].trigger()
    monkeypatch.setenv("PATH", str(tmp_path / "no-tools-here"))
    window.actions["run_default"].trigger()
    qtbot.waitUntil(lambda: not window.bench.busy and any(p[0] == prompts.RUN_ERROR
                                                          for p in prompts.LOG), timeout=10_000)
    message = next(p[2] for p in prompts.LOG if p[0] == prompts.RUN_ERROR)
    assert "strace" in message and "apt install strace" in message
    assert not (folder / "out.txt").exists()
