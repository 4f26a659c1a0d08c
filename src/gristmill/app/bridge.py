"""The bridge between the engine thread and the GUI thread.

The engine publishes events on its own thread; the bridge's subscriber only
puts them on a ``queue.SimpleQueue``. A QTimer on the GUI thread drains the
queue, applies each batch to the ``RunState`` and emits one ``applied`` signal
per batch, so thousands of events a second become a few model updates.
"""

from __future__ import annotations

import gc
import queue
import threading
import time
from dataclasses import dataclass
from typing import Any, Protocol

from PySide6.QtCore import QObject, QTimer, Signal

from gristmill.core.events import Event, EventBus

from .runstate import RunState

DRAIN_INTERVAL_MS = 50
# Events applied per drain: a burst beyond it (a run's start names every task of it) is
# applied in slices, each as soon as the event loop has painted, so no drain stalls it
# (a slice and what the views do with it: ~20 ms here).
MAX_BATCH = 2_000
# What a run keeps (its tasks' states, bars, log lines, events) is moved out of the cyclic
# collector's walks this often: after ``gc.freeze()`` a full collection walks only what
# came since, not everything the run holds (at 10,000 tasks, 50-250 ms stalls). Freezing
# is a splice of lists, no walk; cyclic garbage made meanwhile (rare) is kept.
FREEZE_EVERY_S = 0.25


class RunnableEngine(Protocol):
    def run(self, targets: list[str]) -> Any: ...
    def cancel(self) -> None: ...
    def cancel_task(self, name: str) -> None: ...
    def restart_task(self, name: str, why: str) -> None: ...


@dataclass(frozen=True)
class RunEnded:
    """Put on the queue by the engine thread when ``run`` returns or raises."""

    result: Any = None
    error: BaseException | None = None


class EngineBridge(QObject):
    applied = Signal(object)        # Changes, once per drained batch
    ended = Signal(object)          # RunEnded, after the engine thread is gone

    def __init__(self, state: RunState, parent: QObject | None = None,
                 interval_ms: int = DRAIN_INTERVAL_MS):
        super().__init__(parent)
        self.state = state
        self._queue: queue.SimpleQueue[Event | RunEnded] = queue.SimpleQueue()
        self._timer = QTimer(self)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self.drain)
        self._thread: threading.Thread | None = None
        self._engine: RunnableEngine | None = None
        self._unsubscribe = None
        self._frozen_at = 0.0

    # -- the engine thread side ----------------------------------------------

    def subscriber(self, event: Event) -> None:
        """A bus subscriber: called on the engine thread, so it only queues."""
        self._queue.put(event)

    # -- the GUI thread side ---------------------------------------------------

    @property
    def busy(self) -> bool:
        return self._thread is not None

    def start(self, engine: RunnableEngine, bus: EventBus, targets: list[str]) -> None:
        if self._thread is not None:
            raise RuntimeError("a run is already in progress")
        self._engine = engine
        self._unsubscribe = bus.subscribe(self.subscriber)
        self._thread = threading.Thread(target=self._run, args=(engine, list(targets)),
                                        name="gristmill-engine", daemon=True)
        self._thread.start()
        self._timer.start()

    def _run(self, engine: RunnableEngine, targets: list[str]) -> None:
        try:
            result = engine.run(targets)
        except BaseException as e:        # reported on the GUI thread, never lost
            self._queue.put(RunEnded(error=e))
        else:
            self._queue.put(RunEnded(result=result))

    def feed(self, events: list[Event]) -> None:
        """Queue events by hand (tests, replay) and make sure they are drained."""
        for ev in events:
            self._queue.put(ev)
        if not self._timer.isActive():
            self._timer.start()

    def cancel(self) -> None:
        if self._engine is not None:
            self._engine.cancel()

    def cancel_task(self, name: str) -> None:
        if self._engine is not None:
            self._engine.cancel_task(name)

    def restart_task(self, name: str, why: str) -> None:
        if self._engine is not None:
            self._engine.restart_task(name, why)

    def drain(self) -> None:
        batch: list[Event] = []
        ended: RunEnded | None = None
        get = self._queue.get_nowait
        full = True
        for _ in range(MAX_BATCH):
            try:
                item = get()
            except queue.Empty:
                full = False
                break
            if isinstance(item, RunEnded):
                ended = item
                full = False
                break
            batch.append(item)
        if full:                       # more are waiting: the next slice after this frame
            QTimer.singleShot(0, self, self.drain)
        if batch:
            changes = self.state.apply(batch)
            if changes:
                self.applied.emit(changes)
            now = time.monotonic()
            if now - self._frozen_at >= FREEZE_EVERY_S:
                gc.freeze()
                self._frozen_at = now
        if ended is not None:
            self._finish(ended)
        elif not batch and self._thread is None:
            self._timer.stop()

    def _finish(self, ended: RunEnded) -> None:
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout=5)
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        self._engine = None
        self.drain()         # anything that slipped in after RunEnded
        self.ended.emit(ended)

    def wait(self, timeout: float = 10.0) -> bool:
        """Block until the engine thread ends (used at exit only), then drain."""
        deadline = time.monotonic() + timeout
        while self._thread is not None and time.monotonic() < deadline:
            self.drain()
            time.sleep(0.02)
        return self._thread is None
