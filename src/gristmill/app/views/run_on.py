"""The toolbar's **Run on** selector: this machine, a Dask scheduler, or a cluster started
for the run (its kinds; those not available here greyed). It writes the preferences; the
Preferences dialog shows the same choice with the scheduler's address."""

from __future__ import annotations

from dataclasses import replace

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QStandardItemModel
from PySide6.QtWidgets import QComboBox, QWidget

from ..compute import CLUSTER, CLUSTER_KINDS, DASK, HERE, cluster_missing
from ..settings import Settings


def choices() -> list[tuple[str, str, str, str]]:
    """(title, run_on, cluster kind, why it is not available: "" when it is) for each
    entry of the selector."""
    out = [("This machine", HERE, "", ""), ("Dask scheduler", DASK, "", "")]
    out += [(f"Cluster for the run: {kind}", CLUSTER, kind, cluster_missing(kind))
            for kind in CLUSTER_KINDS]
    return out


def fill(combo: QComboBox) -> None:
    """The choices into ``combo``, the unavailable ones greyed (not selectable), their
    tooltip saying what to install."""
    combo.clear()
    for title, run_on, kind, missing in choices():
        combo.addItem(title, (run_on, kind))
        model = combo.model()
        if not isinstance(model, QStandardItemModel):
            continue
        item = model.item(combo.count() - 1)
        if missing:
            item.setEnabled(False)
            item.setToolTip(f"Not available here: {missing}")
        elif run_on == CLUSTER:
            item.setToolTip(f"A {kind} cluster started for each run, sized to its plan, with "
                            "the workflow's [cluster] settings over your cluster.toml; "
                            "closed when the run ends")


def index_of(combo: QComboBox, run_on: str, kind: str) -> int:
    for i in range(combo.count()):
        r, k = combo.itemData(i)
        if r == run_on and (run_on != CLUSTER or k == kind):
            return i
    return 0


class RunOnSelector(QComboBox):
    """Changes ``settings``' run_on (and cluster kind) when the user picks an entry."""

    chosen = Signal()

    def __init__(self, settings: Settings, parent: QWidget | None = None):
        super().__init__(parent)
        self.settings = settings
        self.setObjectName("run-on")
        # A toolbar control, as the toolbar's buttons are: clicked, not in the Tab order of
        # the page below (the welcome page starts at Open Folder for a keyboard user).
        self.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        self.setToolTip("Where runs go: this machine, the Dask scheduler set in Preferences, "
                        "or a cluster started for the run and closed when it ends")
        fill(self)
        self.refresh()
        self.activated.connect(self._picked)

    def refresh(self) -> None:
        p = self.settings.preferences
        self.setCurrentIndex(index_of(self, p.run_on, p.cluster_kind))
        address = p.dask_address or "no address set: Edit > Preferences"
        self.setItemText(1, f"Dask scheduler ({address})")

    def _picked(self, index: int) -> None:
        run_on, kind = self.itemData(index)
        p = self.settings.preferences
        self.settings.set_preferences(replace(p, run_on=run_on,
                                              cluster_kind=kind or p.cluster_kind))
        self.chosen.emit()
