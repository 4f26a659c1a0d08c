"""The timeline of a run on a cluster: a lane per worker slot (pure: compute.worker_lanes)."""

from gristmill.app.compute import lane_word, worker_lanes
from gristmill.app.runstate import Bar


def test_each_worker_gets_as_many_lanes_as_ran_there_at_once_and_unplaced_come_last():
    bars = [Bar("a", 1, 0, 0.0, 2.0), Bar("b", 1, 1, 0.5, 1.0), Bar("c", 1, 0, 2.0, 3.0),
            Bar("d", 1, 2, 0.0, 1.0), Bar("e", 1, 3, 1.0, None)]
    placed = {("a", 1): "tcp://127.0.0.1:4001", ("b", 1): "tcp://127.0.0.1:4001",
              ("c", 1): "tcp://127.0.0.1:4001", ("d", 1): "tcp://10.0.0.2:9000"}
    out, names = worker_lanes(bars, placed)
    lane = {b.task: names[b.slot] for b in out}
    assert names == ["10.0.0.2:9000 · 1", ":4001 · 1", ":4001 · 2", "not placed"]
    assert lane == {"d": "10.0.0.2:9000 · 1", "a": ":4001 · 1", "b": ":4001 · 2",
                    "c": ":4001 · 1", "e": "not placed"}


def test_in_a_run_with_a_cluster_the_tasks_that_stay_here_have_lanes_of_this_machine():
    bars = [Bar("a", 1, 0, 0.0, 2.0), Bar("join", 1, 1, 2.0, 3.0), Bar("late", 1, 2, 2.5, None)]
    out, names = worker_lanes(bars, {("a", 1): "tcp://10.0.0.2:9000"}, frozenset({"join"}))
    assert names == ["10.0.0.2:9000 · 1", "this machine · 1", "not placed"]
    assert {b.task: names[b.slot] for b in out} == {
        "a": "10.0.0.2:9000 · 1", "join": "this machine · 1", "late": "not placed"}


def test_lane_words():
    assert lane_word("tcp://127.0.0.1:4001") == ":4001"
    assert lane_word("tcp://node7:8786") == "node7:8786"
