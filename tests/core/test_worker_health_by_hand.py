"""WorkerHealth by hand (the app's Workers view): take a worker out, put it back; why
each is out; the circuit breaker's verdict kept for the view. Pure books."""

from __future__ import annotations

from gristmill.core.run.dask_health import WorkerHealth


def test_a_worker_taken_out_by_hand_is_out_with_why_and_put_back_is_in_again():
    h = WorkerHealth()
    h.take_out("tcp://w1")
    assert h.out == {"tcp://w1"} and h.why["tcp://w1"] == "taken out by hand"
    h.put_back("tcp://w1")
    assert h.out == set() and "tcp://w1" not in h.why


def test_a_worker_put_back_by_hand_is_not_ejected_again_by_the_strikes_of_this_run():
    h = WorkerHealth(strikes=1)
    h.failed("tcp://bad", "t1", False, 4)
    assert h.succeeded("tcp://good", "t1", 4) is not None
    assert h.out == {"tcp://bad"} and "t1 failed there" in h.why["tcp://bad"]
    h.put_back("tcp://bad")
    h.failed("tcp://bad", "t2", False, 4)
    assert h.succeeded("tcp://good", "t2", 4) is None
    assert h.out == set()


def test_the_circuit_breakers_verdict_is_kept_in_words():
    h = WorkerHealth(strikes=1, keep=1.0)
    h.failed("tcp://a", "t", False, 2)
    verdict = h.succeeded("tcp://b", "t", 2)
    assert verdict.startswith("circuit breaker") and h.tripped
    assert "tcp://a looks bad" in h.tripped_why and h.out == set()
