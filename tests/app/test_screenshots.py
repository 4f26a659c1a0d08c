"""After a run, every view is drawn, in a light and a dark palette, and is not blank."""

import os
from pathlib import Path

import pytest
from PySide6.QtGui import QImage

from gristmill.app import icons, theme

from conftest import wait_run_over


def not_blank(image: QImage) -> bool:
    """Enough distinct colours, and no single colour covering nearly everything."""
    counts: dict[int, int] = {}
    step = 4
    for y in range(0, image.height(), step):
        for x in range(0, image.width(), step):
            c = image.pixel(x, y)
            counts[c] = counts.get(c, 0) + 1
    total = sum(counts.values())
    return len(counts) > 12 and max(counts.values()) / total < 0.95


@pytest.fixture(params=["light", "dark"])
def palette(request, qapp):
    old = qapp.palette()
    if request.param == "dark":
        qapp.setPalette(theme.dark_palette())
    icons.clear_cache()
    yield request.param
    qapp.setPalette(old)
    icons.clear_cache()


def test_each_view_after_a_run_is_drawn(qtbot, make_window, example, palette, tmp_path):
    shots = Path(os.environ.get("GRISTMILL_SHOTS") or tmp_path / "shots")
    shots.mkdir(parents=True, exist_ok=True)
    window = make_window()
    window.resize(1280, 800)
    window.grab().save(str(shots / f"welcome-{palette}.png"))
    window.settings.trust(example)
    window.open_path(str(example))
    # before any run: greyed "will run" tasks in the graph, an empty board that says why
    for name, view in {"graph": window.graph, "board": window.board}.items():
        window.show_tab(view)
        qtbot.wait(30)
        before = window.grab().toImage()
        before.save(str(shots / f"window-before-{name}-{palette}.png"))
        assert not_blank(before), name
    window.actions["run_default"].trigger()
    wait_run_over(qtbot, window)
    window.selection.set(["report"], "test")
    qtbot.wait(50)
    assert theme.is_dark() == (palette == "dark")
    views = {"graph": window.graph, "board": window.board, "timeline": window.timeline}
    for name, view in views.items():
        window.show_tab(view)
        qtbot.wait(30)
        whole = window.grab().toImage()
        whole.save(str(shots / f"window-{name}-{palette}.png"))
        part = view.grab().toImage()
        part.save(str(shots / f"{name}-{palette}.png"))
        assert not_blank(part), name
        assert not_blank(whole), name
    for name, widget in {"tasks": window.table, "log": window.log}.items():
        image = widget.grab().toImage()
        image.save(str(shots / f"{name}-{palette}.png"))
        assert not_blank(image) or name == "log", name
    window.actions["explain"].trigger()
    window.dialogs["explain"].grab().save(str(shots / f"explain-{palette}.png"))
    window.actions["history"].trigger()
    window.dialogs["history"].grab().save(str(shots / f"history-{palette}.png"))
    window.actions["edit_task"].trigger()
    window.dialogs["edit_task"].grab().save(str(shots / f"edit-task-{palette}.png"))
    window.actions["preferences"].trigger()
    window.dialogs["preferences"].grab().save(str(shots / f"preferences-{palette}.png"))
    assert len(list(shots.glob(f"*-{palette}.png"))) >= 13
