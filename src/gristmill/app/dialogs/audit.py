"""Audit Findings: every finding of a run's dependency audit, with the fix for each, and
for a gristmill.toml the edit applied on request (comments kept, through tomledit)."""

from __future__ import annotations

from typing import Sequence

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (QAbstractItemView, QDialog, QDialogButtonBox, QHeaderView, QLabel,
                               QTreeWidget, QTreeWidgetItem, QVBoxLayout, QWidget)

from ..audit import FindingRow


class AuditDialog(QDialog):
    applied = Signal(str)           # the file an edit was written to

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("audit-dialog")
        self.setWindowTitle("Audit Findings")
        self.resize(820, 380)
        self.title = QLabel(self)
        self.title.setWordWrap(True)
        self.view = QTreeWidget(self)
        self.view.setObjectName("audit-findings")
        self.view.setColumnCount(3)
        self.view.setHeaderLabels(["Task", "Finding", "Fix"])
        self.view.setRootIsDecorated(False)
        self.view.setAlternatingRowColors(True)
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.view.header().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.view.header().setStretchLastSection(True)
        buttons = QDialogButtonBox(self)
        self.apply_button = buttons.addButton("Apply Edit", QDialogButtonBox.ButtonRole.ActionRole)
        self.apply_button.setToolTip("Make this change in the workflow file, keeping its comments")
        buttons.addButton(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.title)
        layout.addWidget(self.view)
        layout.addWidget(buttons)
        self.rows: list[FindingRow] = []
        self.apply_button.clicked.connect(self.apply_selected)
        self.view.itemSelectionChanged.connect(self._update_buttons)

    def set_findings(self, title: str, rows: Sequence[FindingRow]) -> None:
        self.rows = list(rows)
        self.title.setText(title)
        self.view.clear()
        for row in self.rows:
            f = row.finding
            item = QTreeWidgetItem([row.task, f.message, f.fix])
            item.setToolTip(1, f.message)
            item.setToolTip(2, f"{f.fix}\n{f.where}" if f.where else f.fix)
            self.view.addTopLevelItem(item)
        if self.rows:
            self.view.setCurrentItem(self.view.topLevelItem(0))
        self._update_buttons()

    def selected(self) -> FindingRow | None:
        item = self.view.currentItem()
        if item is None:
            return None
        index = self.view.indexOfTopLevelItem(item)
        return self.rows[index] if 0 <= index < len(self.rows) else None

    def _update_buttons(self) -> None:
        row = self.selected()
        self.apply_button.setEnabled(row is not None and row.edit is not None)

    def apply_selected(self) -> bool:
        row = self.selected()
        if row is None or row.edit is None:
            return False
        from ..tomledit import edit_list
        e = row.edit
        try:
            changed = edit_list(e.file, e.table, e.key, add=None if e.remove else e.value,
                                remove=e.value if e.remove else None)
        except (OSError, KeyError, ValueError) as exc:
            self.title.setText(f"Could not edit {e.file}: {exc}")
            return False
        index = self.rows.index(row)
        self.view.topLevelItem(index).setText(2, ("applied: " if changed else "already so: ")
                                              + row.finding.fix)
        self.rows[index] = FindingRow(row.task, row.finding, None)
        self._update_buttons()
        if changed:
            self.applied.emit(e.file)
        return changed
