"""Colours for task states and outcomes, chosen to read well on light and dark palettes."""

from __future__ import annotations

from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication

from gristmill.core.events import Outcome, TaskState

from .states import RUN_STATES, RUN_TITLES, IdleState, ShownState

# (light palette, dark palette)
_STATE: dict[ShownState, tuple[str, str]] = {
    TaskState.WAITING: ("#c9ced6", "#4a505a"),
    TaskState.READY: ("#9ec5f8", "#2f5d9a"),
    TaskState.RUNNING: ("#f5c451", "#b8860b"),
    TaskState.DONE: ("#8fd19e", "#2e7d46"),
    TaskState.FAILED: ("#f28b82", "#b3362c"),
    TaskState.SKIPPED: ("#d7b8f3", "#6b4c8a"),
    TaskState.UP_TO_DATE: ("#e4ede6", "#33423a"),
    TaskState.CANCELLED: ("#b9bec6", "#5d636c"),
    # Not in the run: greyed, close to the base colour (the graph adds a dashed edge for "will run").
    IdleState.STALE: ("#eceef2", "#30343a"),
    IdleState.FRESH: ("#f4f6f4", "#272b29"),
}
# The outline of a task that is not in the run, and its text.
_IDLE_EDGE = ("#8d96a3", "#7d8590")
_IDLE_TEXT = ("#5f6670", "#9aa1aa")
_OUTCOME = {
    Outcome.SUCCEEDED: ("#5cb56f", "#3c9a55"),
    Outcome.FAILED: ("#e0584c", "#d0493e"),
    Outcome.TIMED_OUT: ("#e8913a", "#d07a26"),
    Outcome.CANCELLED: ("#9aa0a8", "#7b818a"),
}
_RUNNING_BAR = ("#f0b429", "#d9a21b")

STATE_TITLES = RUN_TITLES
BOARD_STATES = RUN_STATES


def is_dark(palette: QPalette | None = None) -> bool:
    if palette is None:
        app = QApplication.instance()
        palette = app.palette() if app is not None else QPalette()
    return palette.color(QPalette.ColorRole.Window).lightness() < 128


def _pick(pair: tuple[str, str], dark: bool | None) -> QColor:
    if dark is None:
        dark = is_dark()
    return QColor(pair[1] if dark else pair[0])


def state_color(state: ShownState | None, dark: bool | None = None) -> QColor:
    return _pick(_STATE.get(state, _STATE[IdleState.FRESH]), dark)


def idle_edge_color(dark: bool | None = None) -> QColor:
    return _pick(_IDLE_EDGE, dark)


def idle_text_color(dark: bool | None = None) -> QColor:
    return _pick(_IDLE_TEXT, dark)


def outcome_color(outcome: Outcome | None, dark: bool | None = None) -> QColor:
    return _pick(_OUTCOME[outcome] if outcome is not None else _RUNNING_BAR, dark)


def text_on(color: QColor) -> QColor:
    """Black or white, whichever reads better on ``color``."""
    r, g, b = color.redF(), color.greenF(), color.blueF()
    luminance = 0.2126 * r + 0.7152 * g + 0.0722 * b
    return QColor("#1b1f24") if luminance > 0.45 else QColor("#f4f6f8")


def dark_palette() -> QPalette:
    """A calm dark palette (used by tests and by users who pick it)."""
    p = QPalette()
    role = QPalette.ColorRole
    p.setColor(role.Window, QColor("#25282c"))
    p.setColor(role.WindowText, QColor("#e3e5e8"))
    p.setColor(role.Base, QColor("#1d1f22"))
    p.setColor(role.AlternateBase, QColor("#2a2d31"))
    p.setColor(role.ToolTipBase, QColor("#33373c"))
    p.setColor(role.ToolTipText, QColor("#e3e5e8"))
    p.setColor(role.PlaceholderText, QColor("#8a9099"))
    p.setColor(role.Text, QColor("#e3e5e8"))
    p.setColor(role.Button, QColor("#2f3237"))
    p.setColor(role.ButtonText, QColor("#e3e5e8"))
    p.setColor(role.BrightText, QColor("#ff6b6b"))
    p.setColor(role.Highlight, QColor("#3d7bd9"))
    p.setColor(role.HighlightedText, QColor("#ffffff"))
    p.setColor(role.Link, QColor("#6ea8fe"))
    p.setColor(role.Mid, QColor("#3a3e44"))
    p.setColor(role.Dark, QColor("#18191b"))
    p.setColor(role.Light, QColor("#454a51"))
    p.setColor(role.Midlight, QColor("#3a3e44"))
    p.setColor(role.Shadow, QColor("#000000"))
    disabled = QPalette.ColorGroup.Disabled
    for r in (role.WindowText, role.Text, role.ButtonText):
        p.setColor(disabled, r, QColor("#6f757d"))
    return p


THEMES = {"system": "Follow the system", "light": "Light", "dark": "Dark"}
_system_palette: QPalette | None = None


def light_palette() -> QPalette:
    """The style's own light palette."""
    app = QApplication.instance()
    return app.style().standardPalette() if app is not None else QPalette()


def apply_theme(choice: str) -> None:
    """The app's palette for a theme preference: dark, light, or the system's own (the
    palette the app started with)."""
    global _system_palette
    app = QApplication.instance()
    if app is None:
        return
    if _system_palette is None:
        if choice not in ("dark", "light"):
            return                       # never changed: the app's palette is the system's
        _system_palette = QPalette(app.palette())
    if choice == "dark":
        palette = dark_palette()
    elif choice == "light":
        palette = (_system_palette if not is_dark(_system_palette) else light_palette())
    else:
        palette = _system_palette
    app.setPalette(palette)
