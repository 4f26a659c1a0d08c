"""App tests: offscreen (set in tests/conftest.py), no modal prompts, fail on Qt warnings."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from gristmill.app import prompts, resources
from gristmill.core.events import RunStatus

ANSWERS = {
    prompts.TRUST: True,
    prompts.CLEAN: True,
    prompts.CLEAN_TASK: True,
    prompts.CLOSE_DURING_RUN: True,
    prompts.WORKFLOW_ERROR: True,
    prompts.RUN_ERROR: True,
    prompts.NOTICE: True,
}


def pytest_collection_modifyitems(config, items):
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.qt_log_level_fail("WARNING"))
            # The offscreen platform says this about window-manager requests it cannot honour.
            item.add_marker(pytest.mark.qt_log_ignore(r"This plugin does not support (propagateSizeHints|raise)"))


@pytest.fixture(autouse=True)
def auto_answers():
    """Prompts are answered at once; tests change the answers they care about."""
    prompts.AUTO_ANSWERS = dict(ANSWERS)
    prompts.LOG.clear()
    yield prompts.AUTO_ANSWERS
    prompts.AUTO_ANSWERS = None


@pytest.fixture
def history():
    from gristmill.core.record.history import History
    h = History()
    yield h
    h.close()


@pytest.fixture
def make_window(qtbot, history):
    """Build main windows like the app does; runs still going at the end are cancelled."""
    from gristmill.app.main import create_window
    from gristmill.app.settings import Settings
    made = []

    def make(path=None):
        w = create_window(path, settings=Settings(), history=history)
        qtbot.addWidget(w)
        made.append(w)
        return w
    yield make
    for w in made:
        if w.bench.busy:
            w.bench.cancel()
            w.bench.wait(15)


@pytest.fixture
def window(make_window):
    return make_window()


@pytest.fixture
def example(tmp_path) -> Path:
    """A fresh copy of the bundled pipeline example."""
    src = resources.example("pipeline")
    assert src is not None, "the bundled example is missing"
    dest = tmp_path / "pipeline"
    shutil.copytree(src, dest, ignore=shutil.ignore_patterns("build"))
    return dest


def wait_run_over(qtbot, window, timeout=30_000):
    qtbot.waitUntil(lambda: not window.bench.busy and window.bench.run.status not in (None, RunStatus.RUNNING),
                    timeout=timeout)


def pump(qtbot, ms=50):
    qtbot.wait(ms)


def process_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    except OSError:
        return False


def wait_for(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()
