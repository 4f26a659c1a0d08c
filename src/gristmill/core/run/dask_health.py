"""Bad Dask workers out of rotation: strikes, verdicts and the circuit breaker."""

from __future__ import annotations

import math



# -- bad workers out of rotation ---------------------------------------------------------

class WorkerHealth:
    """Which workers are out of rotation (a bad machine must not fail the whole run). Pure books: no Dask here.

    A worker gets a strike when a task failed on it and then succeeded on another
    worker, or when a command could not even start there (a folder or shell
    missing: the shared filesystem is not mounted). A success there clears its
    strikes. At ``strikes`` it is taken out of rotation for the rest of the run,
    unless that would leave fewer than ``keep`` of the known workers in
    rotation: then the circuit breaker trips and no more workers are taken
    out, so a wrong verdict (a flaky task, a cluster-wide fault) cannot eject
    the whole fleet.
    """

    def __init__(self, strikes: int = 2, keep: float = 0.5):
        self.strikes_needed = strikes
        self.keep = keep
        self.strikes: dict[str, int] = {}
        self.out: set[str] = set()
        self.tripped = False
        self.why: dict[str, str] = {}            # worker -> why it is out of rotation
        self.tripped_why = ""                    # what the circuit breaker said
        self.by_hand: set[str] = set()           # taken out (or put back) by a person
        self._failed_on: dict[str, str] = {}     # task -> the worker its last attempt failed on

    def failed_on(self, task: str) -> str | None:
        return self._failed_on.get(task)

    def failed(self, worker: str | None, task: str, could_not_start: bool,
               workers: int) -> str | None:
        """An attempt of ``task`` failed on ``worker``; returns a verdict to announce, if any."""
        if worker is None:
            return None
        self._failed_on[task] = worker
        if could_not_start:
            return self._strike(worker, "a command could not start there", workers)
        return None

    def succeeded(self, worker: str | None, task: str, workers: int) -> str | None:
        if worker is None:
            return None
        self.strikes.pop(worker, None)
        bad = self._failed_on.pop(task, None)
        if bad is not None and bad != worker:
            return self._strike(bad, f"{task} failed there and then succeeded on {worker}",
                                workers)
        return None

    def _strike(self, worker: str, why: str, workers: int) -> str | None:
        if worker in self.out or worker in self.by_hand:
            return None
        n = self.strikes[worker] = self.strikes.get(worker, 0) + 1
        if n < self.strikes_needed:
            return None
        if self.tripped:
            return None
        in_rotation = workers - len(self.out) - 1
        if in_rotation < max(1, math.ceil(self.keep * workers)):
            self.tripped = True
            self.tripped_why = (f"worker {worker} looks bad ({why}), but taking it out "
                                f"would leave {in_rotation} of {workers} workers")
            return (f"circuit breaker: worker {worker} looks bad ({why}), but taking it out "
                    f"would leave {in_rotation} of {workers} workers; no more workers are "
                    f"taken out of rotation in this run")
        self.out.add(worker)
        self.why[worker] = f"{n} strikes (last: {why})"
        return f"worker {worker} taken out of rotation after {n} strikes (last: {why})"

    # -- by hand (the app's Workers view) ----------------------------------------------
    def take_out(self, worker: str, why: str = "taken out by hand") -> None:
        """Send no more jobs to ``worker`` in this run (the circuit breaker does not
        apply: a person decided). What runs there now runs on."""
        self.out.add(worker)
        self.why[worker] = why
        self.by_hand.add(worker)

    def put_back(self, worker: str) -> None:
        """``worker`` back in rotation, its strikes forgotten; automatic verdicts leave it
        alone for the rest of the run (a person decided)."""
        self.out.discard(worker)
        self.why.pop(worker, None)
        self.strikes.pop(worker, None)
        self.by_hand.add(worker)
