"""Edit Task: add or change a task in a form with validation, written back with tomlkit."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QCheckBox, QDialog, QDialogButtonBox, QFormLayout, QLabel, QLineEdit,
                               QPlainTextEdit, QVBoxLayout, QWidget)

from ..tomledit import TaskForm, read_task, task_names, validate, write_task

FIELDS = ("name", "description", "commands", "foreach", "inputs", "outputs", "after",
          "cpu", "mem", "gpu", "gpu_mem", "retries", "timeout")


PLACEHOLDERS = {
    "name": "e.g. thumbnails",
    "commands": "python resize.py {input} {output}",
    "foreach": "e.g. images/*.png",
    "inputs": "e.g. {item}",
    "outputs": "e.g. thumbs/{stem}.png",
    "cpu": "1",
    "mem": "e.g. 300MB",
    "gpu": "0",
    "gpu_mem": "e.g. 20GB",
    "retries": "0",
    "timeout": "e.g. 30m",
}


def _lines(edit: QPlainTextEdit) -> list[str]:
    return [line for line in edit.toPlainText().splitlines() if line.strip()]


class TaskEditorDialog(QDialog):
    saved = Signal(str)      # the task's name, after the file was written

    def __init__(self, path: str | Path, task: str | None = None, parent: QWidget | None = None):
        super().__init__(parent)
        self.path = Path(path)
        self.original = task
        self.setObjectName("task-editor")
        self.setWindowTitle(f"Edit Task — {task}" if task else "Add Task")
        self.resize(560, 620)
        self.existing = set(task_names(self.path))
        self._init_widgets()
        form = read_task(self.path, task) if task else TaskForm(commands=[])
        self.set_form(form)
        self._connect_signals()
        self.validate()

    def _init_widgets(self) -> None:
        self.edits: dict[str, QLineEdit | QPlainTextEdit] = {}
        self.errors: dict[str, QLabel] = {}
        layout = QFormLayout()
        tips = {
            "name": ("Name", "The task's name: letters, digits, '_', '-' and '.'"),
            "description": ("Description", "One line that says what the task does"),
            "commands": ("Commands", "Shell commands, one per line, run in order"),
            "foreach": ("For each", "A glob: one instance of the task per matching file (optional)"),
            "inputs": ("Inputs", "Files it reads, one per line (globs allowed)"),
            "outputs": ("Outputs", "Files it writes, one per line"),
            "after": ("After", "Tasks it must run after, one per line"),
            "cpu": ("CPU", "CPUs it needs while it runs, e.g. 1 or 0.5 (empty: 1)"),
            "mem": ("Memory", "Memory it needs, with its unit: e.g. 300MB or 4GB; a bare number is "
                    "refused (empty: none declared)"),
            "gpu": ("GPU", "whole GPUs (1, 2) or a share (0.25); empty: none"),
            "gpu_mem": ("GPU memory", "Memory it needs on its GPU, with its unit: e.g. 20GB; "
                        "any device with that much free declared memory takes it (empty: "
                        "none declared)"),
            "retries": ("Retries", "Extra attempts after a failure (empty: 0)"),
            "timeout": ("Timeout", "Kill it after this long, e.g. 90s, 30m, 1h30m (empty: never)"),
        }
        multi = {"commands": 4, "inputs": 3, "outputs": 3, "after": 2}
        for key in FIELDS:
            label, tip = tips[key]
            if key in multi:
                edit: QLineEdit | QPlainTextEdit = QPlainTextEdit(self)
                edit.setTabChangesFocus(True)
                edit.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
                edit.setFixedHeight(edit.fontMetrics().lineSpacing() * multi[key] + 12)
            else:
                edit = QLineEdit(self)
            edit.setObjectName(f"field-{key}")
            edit.setPlaceholderText(PLACEHOLDERS.get(key, ""))
            edit.setToolTip(tip)
            error = QLabel(self)
            error.setObjectName(f"error-{key}")
            error.setStyleSheet("color: #d0493e")
            error.setWordWrap(True)
            error.hide()
            box = QVBoxLayout()
            box.setSpacing(2)
            box.addWidget(edit)
            box.addWidget(error)
            layout.addRow(label, box)
            self.edits[key] = edit
            self.errors[key] = error
        self.phony = QCheckBox("Phony: runs whenever asked, never up to date", self)
        self.phony.setObjectName("field-phony")
        layout.addRow("", self.phony)
        self.problem = QLabel(self)
        self.problem.setStyleSheet("color: #d0493e")
        self.problem.setWordWrap(True)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save
                                        | QDialogButtonBox.StandardButton.Cancel, self)
        outer = QVBoxLayout(self)
        where = QLabel(f"Written to {self.path} — comments and formatting are kept.", self)
        where.setEnabled(False)
        where.setWordWrap(True)
        outer.addWidget(where)
        outer.addLayout(layout)
        outer.addWidget(self.problem)
        outer.addStretch(1)
        outer.addWidget(self.buttons)

    def _connect_signals(self) -> None:
        for edit in self.edits.values():
            edit.textChanged.connect(self.validate)
        self.phony.toggled.connect(self.validate)
        self.buttons.accepted.connect(self.save)
        self.buttons.rejected.connect(self.reject)

    # -- the form -------------------------------------------------------------------

    def set_form(self, form: TaskForm) -> None:
        for key in FIELDS:
            value = getattr(form, key)
            edit = self.edits[key]
            if isinstance(edit, QPlainTextEdit):
                edit.setPlainText("\n".join(value))
            else:
                edit.setText(value)
        self.phony.setChecked(form.phony)

    def form(self) -> TaskForm:
        values = {}
        for key in FIELDS:
            edit = self.edits[key]
            values[key] = _lines(edit) if isinstance(edit, QPlainTextEdit) else edit.text().strip()
        return TaskForm(phony=self.phony.isChecked(), **values)

    def validate(self) -> dict[str, str]:
        problems = validate(self.form(), self.existing, self.original)
        for key, label in self.errors.items():
            message = problems.get(key, "")
            label.setText(message)
            label.setVisible(bool(message))
        self.buttons.button(QDialogButtonBox.StandardButton.Save).setEnabled(not problems)
        return problems

    def save(self) -> bool:
        if self.validate():
            return False
        form = self.form()
        try:
            write_task(self.path, form, self.original)
        except (OSError, ValueError) as e:
            self.problem.setText(f"Could not write {self.path}: {e}")
            return False
        self.saved.emit(form.name)
        self.accept()
        return True
