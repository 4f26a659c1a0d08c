"""Questions and notices that never block the event loop (``open()`` + ``finished``).

Tests set ``AUTO_ANSWERS`` (prompt id -> answer): a prompt with an answer there
is not shown; its callback gets the answer on the next turn of the event loop.
Every prompt, shown or answered, is recorded in ``LOG`` as (id, title, text).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QMessageBox, QWidget

AUTO_ANSWERS: dict[str, object] | None = None
LOG: list[tuple[str, str, str]] = []

# Prompt ids
TRUST = "trust"
CLOSE_DURING_RUN = "close-during-run"
CLEAN = "clean"                  # remove declared outputs
CLEAN_TASK = "clean-task"        # run the workflow's own clean task
WORKFLOW_ERROR = "workflow-error"
RUN_ERROR = "run-error"
NOTICE = "notice"

ButtonRole = QMessageBox.ButtonRole
Icon = QMessageBox.Icon


@dataclass(frozen=True)
class Choice:
    label: str
    answer: object
    role: QMessageBox.ButtonRole = ButtonRole.AcceptRole
    default: bool = False      # Enter
    escape: bool = False       # Esc


def ask(parent: QWidget | None, prompt_id: str, title: str, text: str,
        choices: Sequence[Choice], callback: Callable[[object], None], *,
        informative: str = "", detail: str = "",
        icon: QMessageBox.Icon = QMessageBox.Icon.Question) -> QMessageBox | None:
    """Ask without blocking; ``callback(answer)`` runs when the user chooses."""
    LOG.append((prompt_id, title, text))
    if AUTO_ANSWERS is not None and prompt_id in AUTO_ANSWERS:
        answer = AUTO_ANSWERS[prompt_id]
        QTimer.singleShot(0, lambda: callback(answer))
        return None
    box = QMessageBox(icon, title, text, QMessageBox.StandardButton.NoButton, parent)
    box.setObjectName(f"prompt-{prompt_id}")
    if informative:
        box.setInformativeText(informative)
    if detail:
        box.setDetailedText(detail)
    answers: dict[int, object] = {}
    escape_answer = None
    for choice in choices:
        button = box.addButton(choice.label, choice.role)
        answers[id(button)] = choice.answer
        if choice.default:
            box.setDefaultButton(button)
        if choice.escape:
            box.setEscapeButton(button)
            escape_answer = choice.answer

    def finished(_result: int) -> None:
        clicked = box.clickedButton()
        answer = answers.get(id(clicked), escape_answer) if clicked is not None else escape_answer
        box.deleteLater()
        callback(answer)

    box.finished.connect(finished)
    box.open()
    return box


def notify(parent: QWidget | None, prompt_id: str, title: str, text: str, *,
           informative: str = "", detail: str = "",
           icon: QMessageBox.Icon = QMessageBox.Icon.Warning,
           callback: Callable[[object], None] | None = None) -> QMessageBox | None:
    """A notice with one OK button, shown without blocking."""
    return ask(parent, prompt_id, title, text, [Choice("OK", True, default=True, escape=True)],
               callback or (lambda _a: None), informative=informative, detail=detail, icon=icon)
