"""Preferences: default parallelism and capacity, history retention, trusted folders."""

from __future__ import annotations

from dataclasses import replace

from PySide6.QtWidgets import (QComboBox, QDialog, QDialogButtonBox, QDoubleSpinBox, QFormLayout, QGroupBox,
                               QHBoxLayout, QLabel, QLineEdit, QListWidget, QPushButton, QSpinBox,
                               QVBoxLayout, QWidget)

from gristmill.core.load.userconfig import user_cluster_file
from gristmill.core.sizes import parse_size

from ..settings import Preferences, Settings
from ..theme import THEMES


class PreferencesDialog(QDialog):
    def __init__(self, settings: Settings, parent: QWidget | None = None):
        super().__init__(parent)
        self.settings = settings
        self.setObjectName("preferences-dialog")
        self.setWindowTitle("Preferences")
        self._init_widgets()
        self.set_preferences(settings.preferences)
        self.trusted.addItems(settings.trusted)
        self._connect_signals()
        self._validate()

    def _init_widgets(self) -> None:
        self.jobs = QSpinBox(self)
        self.jobs.setObjectName("pref-jobs")
        self.jobs.setRange(0, 1024)
        self.jobs.setSpecialValueText("Automatic")
        self.jobs.setToolTip("At most this many tasks at once; Automatic packs tasks by the resources they declare")
        self.cpu = QDoubleSpinBox(self)
        self.cpu.setObjectName("pref-cpu")
        self.cpu.setRange(0, 4096)
        self.cpu.setDecimals(1)
        self.cpu.setSpecialValueText("Detect")
        self.cpu.setToolTip("CPUs Gristmill may use; Detect uses what this machine has")
        self.mem = QLineEdit(self)
        self.mem.setObjectName("pref-mem")
        self.mem.setPlaceholderText("Detect (e.g. 16GB)")
        self.mem.setToolTip("Memory Gristmill may use, e.g. 16GB; empty detects it")
        self.gpu = QSpinBox(self)
        self.gpu.setObjectName("pref-gpu")
        self.gpu.setRange(-1, 64)
        self.gpu.setSpecialValueText("Detect")
        self.gpu.setToolTip("GPUs Gristmill may use; Detect asks nvidia-smi")
        self.keep_days = QSpinBox(self)
        self.keep_days.setObjectName("pref-keep-days")
        self.keep_days.setRange(0, 3650)
        self.keep_days.setSpecialValueText("Forever")
        self.keep_days.setSuffix(" days")
        self.keep_days.setToolTip("Forget runs older than this")
        self.keep_runs = QSpinBox(self)
        self.keep_runs.setObjectName("pref-keep-runs")
        self.keep_runs.setRange(0, 100000)
        self.keep_runs.setSpecialValueText("All")
        self.keep_runs.setSuffix(" runs")
        self.keep_runs.setToolTip("Keep at most this many runs")
        self.theme = QComboBox(self)
        self.theme.setObjectName("pref-theme")
        for key, title in THEMES.items():
            self.theme.addItem(title, key)
        self.theme.setToolTip("Light or dark colours, or whichever the system uses")
        self.mem_error = QLabel(self)
        self.mem_error.setStyleSheet("color: #d0493e")
        self.mem_error.hide()
        self.trusted = QListWidget(self)
        self.trusted.setObjectName("pref-trusted")
        self.trusted.setToolTip("Folders whose commands Gristmill runs without asking")
        self.untrust = QPushButton("Remove", self)
        self.untrust.setToolTip("Ask again before running this folder's commands")

        from ..views.run_on import fill
        self.run_on = QComboBox(self)
        self.run_on.setObjectName("pref-run-on")
        self.run_on.setToolTip("Where runs go: this machine, a Dask scheduler, or a cluster "
                               "started for the run and closed when it ends")
        fill(self.run_on)
        self.dask_address = QLineEdit(self)
        self.dask_address.setObjectName("pref-dask-address")
        self.dask_address.setPlaceholderText("tcp://host:8786")
        self.dask_address.setToolTip("The Dask scheduler runs go to when Run on is a Dask scheduler")
        where = QGroupBox("Run on", self)
        wform = QFormLayout(where)
        wform.addRow("Run on:", self.run_on)
        wform.addRow("Scheduler:", self.dask_address)
        config = user_cluster_file()
        self.cluster_config = QLabel(
            "A cluster for the run is sized to each run's plan.\nIts settings: the "
            "workflow's [cluster], then your cluster.toml", self)
        self.cluster_config.setObjectName("pref-cluster-config")
        self.cluster_config.setToolTip(
            "Queue, account, walltime, memory, prologue, max_workers…: the workflow's "
            f"[cluster] table wins key by key over {config}"
            + ("" if config.exists() else " (not there now)"))
        self.cluster_config.setEnabled(False)
        wform.addRow("", self.cluster_config)

        run = QGroupBox("Running", self)
        form = QFormLayout(run)
        form.addRow("Parallel tasks:", self.jobs)
        form.addRow("CPUs:", self.cpu)
        mem_box = QVBoxLayout()
        mem_box.addWidget(self.mem)
        mem_box.addWidget(self.mem_error)
        form.addRow("Memory:", mem_box)
        form.addRow("GPUs:", self.gpu)
        hint = QLabel("A workflow's own [capacity] section takes precedence.", self)
        hint.setEnabled(False)
        form.addRow("", hint)
        look = QGroupBox("Appearance", self)
        lform = QFormLayout(look)
        lform.addRow("Theme:", self.theme)
        history = QGroupBox("History", self)
        hform = QFormLayout(history)
        hform.addRow("Keep runs for:", self.keep_days)
        hform.addRow("Keep at most:", self.keep_runs)
        trust = QGroupBox("Trusted folders", self)
        tbox = QVBoxLayout(trust)
        tbox.addWidget(self.trusted)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(self.untrust)
        tbox.addLayout(row)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                                        | QDialogButtonBox.StandardButton.Cancel, self)
        layout = QVBoxLayout(self)
        layout.addWidget(where)
        layout.addWidget(run)
        layout.addWidget(look)
        layout.addWidget(history)
        layout.addWidget(trust)
        layout.addWidget(self.buttons)

    def _connect_signals(self) -> None:
        self.buttons.accepted.connect(self.save)
        self.buttons.rejected.connect(self.reject)
        self.mem.textChanged.connect(self._validate)
        self.untrust.clicked.connect(self._remove_trusted)
        self.trusted.itemSelectionChanged.connect(
            lambda: self.untrust.setEnabled(bool(self.trusted.selectedItems())))
        self.untrust.setEnabled(False)

    def set_preferences(self, p: Preferences) -> None:
        self.jobs.setValue(p.jobs)
        self.cpu.setValue(p.cpu)
        self.mem.setText(p.mem)
        self.gpu.setValue(p.gpu)
        self.keep_days.setValue(p.keep_days)
        self.keep_runs.setValue(p.keep_runs)
        from ..views.run_on import index_of
        self.run_on.setCurrentIndex(index_of(self.run_on, p.run_on, p.cluster_kind))
        self.dask_address.setText(p.dask_address)
        self.theme.setCurrentIndex(max(0, self.theme.findData(p.theme)))

    def preferences(self) -> Preferences:
        return replace(self.settings.preferences, jobs=self.jobs.value(), cpu=float(self.cpu.value()),
                       mem=self.mem.text().strip(), gpu=self.gpu.value(),
                       keep_days=self.keep_days.value(), keep_runs=self.keep_runs.value(),
                       theme=self.theme.currentData() or "system", **self._run_on())

    def _run_on(self) -> dict:
        run_on, kind = self.run_on.currentData()
        out = {"run_on": run_on, "dask_address": self.dask_address.text().strip()}
        if kind:
            out["cluster_kind"] = kind
        return out

    def _validate(self) -> bool:
        text = self.mem.text().strip()
        message = ""
        if text:
            try:
                parse_size(text)
            except ValueError as e:
                message = str(e)
        self.mem_error.setText(message)
        self.mem_error.setVisible(bool(message))
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(not message)
        return not message

    def _remove_trusted(self) -> None:
        for item in self.trusted.selectedItems():
            self.trusted.takeItem(self.trusted.row(item))

    def save(self) -> bool:
        if not self._validate():
            return False
        self.settings.set_preferences(self.preferences())
        kept = {self.trusted.item(i).text() for i in range(self.trusted.count())}
        for folder in self.settings.trusted:
            if folder not in kept:
                self.settings.untrust(folder)
        self.accept()
        return True
