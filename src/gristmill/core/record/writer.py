"""A subscriber that only enqueues, and one background thread that writes in batches.

History and the run log both sit on the engine's hot loop: ``on_event`` puts
the event on a queue and returns; the writer thread takes what has gathered
(up to ``batch_size`` at once) and hands it to ``_write_batch``, so a slow
disk never stalls the engine.
"""

from __future__ import annotations

import atexit
import queue
import threading
import weakref

from ..events import Event

_STOP = object()
LINGER = 0.02       # seconds the writer lets events gather after writing a batch


class BackgroundWriter:
    batch_size = 5000

    def __init__(self, thread_name: str) -> None:
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._closed = False
        self._hurry = threading.Event()     # set by flush/close: cut the linger short
        self._thread = threading.Thread(target=self._write_loop, name=thread_name, daemon=True)
        ref = weakref.ref(self)

        def close_at_exit() -> None:
            writer = ref()
            if writer is not None:
                writer.close()
        self._close_at_exit = close_at_exit
        atexit.register(close_at_exit)

    def _start_writer(self) -> None:
        """Start the thread; call at the end of the subclass's ``__init__``."""
        self._thread.start()

    def _enqueue(self, event: Event) -> None:
        self._queue.put(event)

    def flush(self, timeout: float | None = None) -> bool:
        """Block until everything queued so far is written. False on timeout."""
        if not self._thread.is_alive():
            return True
        done = threading.Event()
        self._queue.put(done)
        self._hurry.set()
        return done.wait(timeout)

    def close(self, timeout: float | None = None) -> None:
        """Write what is queued and stop the writer thread."""
        if self._closed:
            return
        self._closed = True
        atexit.unregister(self._close_at_exit)
        self._queue.put(_STOP)
        self._hurry.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the writer thread ----------------------------------------------------
    def _writer_started(self) -> None:
        """On the writer thread, before the first batch."""

    def _last_batch(self) -> None:
        """On the writer thread, at close, after the last events were handed over."""

    def _writer_stopped(self) -> None:
        """On the writer thread, after the last batch (also after an error)."""

    def _write_batch(self, events: list[Event]) -> None:
        raise NotImplementedError

    def _retry_in(self) -> float | None:
        """Seconds until ``_write_batch([])`` should be called again though nothing new
        came (it kept events it could not write); None: wait for events."""
        return None

    def _write_loop(self) -> None:
        self._writer_started()
        try:
            while True:
                retry = self._retry_in()
                try:
                    batch = [self._queue.get(timeout=retry)]
                except queue.Empty:
                    self._write_batch([])
                    continue
                while len(batch) < self.batch_size:
                    try:
                        batch.append(self._queue.get_nowait())
                    except queue.Empty:
                        break
                events = [item for item in batch if isinstance(item, Event)]
                if events or retry is not None:
                    self._write_batch(events)
                for item in batch:
                    if isinstance(item, threading.Event):
                        item.set()
                if any(item is _STOP for item in batch):
                    self._last_batch()
                    return
                if not any(isinstance(item, threading.Event) for item in batch):
                    # Let events gather: one wake-up (and one GIL hand-over) per batch,
                    # not per event, keeps this thread off the engine's back. A flush
                    # or close does not wait for it (a run's end: 20-40 ms less).
                    self._hurry.wait(LINGER)
                    self._hurry.clear()
        finally:
            self._writer_stopped()
