"""The GPU books alone: shares and memory per device, never more than a device holds."""

from __future__ import annotations

from hypothesis import given, settings, strategies as st

from gristmill.core.decide.capacity import Capacity, FreeCapacity
from gristmill.core.decide.scheduler import schedule
from gristmill.core.gpu import GpuDevice
from gristmill.core.workflow import Resources, Task

GB = 1000 ** 3


def cards(n: int, mem: int = 80 * GB) -> Capacity:
    return Capacity(cpu=64, mem=64 * GB,
                    devices=tuple(GpuDevice(i, f"GPU-{i}", mem=mem, handle=str(i)) for i in range(n)))


def t(name: str, gpu=0, gpu_mem=0) -> Task:
    return Task(name, resources=Resources(cpu=0.1, gpu=gpu, gpu_mem=gpu_mem))


def start(free: FreeCapacity, tasks: list[Task]) -> dict[str, tuple[int, ...]]:
    got = {}
    for i in schedule(tasks, free):
        got[tasks[i].name] = free.take(tasks[i].resources)[0]
    return got


def test_four_quarter_shares_pack_onto_one_card_and_the_fifth_goes_to_the_next():
    free = FreeCapacity(cards(2))
    got = start(free, [t(f"s{i}", gpu=0.25) for i in range(5)])
    assert [got[f"s{i}"] for i in range(5)] == [(0,), (0,), (0,), (0,), (1,)]


def test_a_whole_gpu_is_never_one_that_holds_a_share():
    free = FreeCapacity(cards(2))
    got = start(free, [t("s", gpu=0.5), t("w", gpu=1), t("w2", gpu=1), t("s2", gpu=0.5)])
    assert got == {"s": (0,), "w": (1,), "s2": (0,)}      # w2 waits: no whole card is free
    free.give(Resources(cpu=0.1, gpu=1), got["w"], 1)
    assert start(free, [t("w2", gpu=1)]) == {"w2": (1,)}


def test_gpu_mem_packs_small_jobs_onto_one_card_without_oversubscribing_it():
    free = FreeCapacity(cards(2))
    got = start(free, [t(f"m{i}", gpu_mem=30 * GB) for i in range(5)])
    # Two 30 GB jobs fill a card as far as a third would overflow it; the fifth waits.
    assert [got.get(f"m{i}") for i in range(5)] == [(0,), (0,), (1,), (1,), None]
    assert free.gpu_mem == [20 * GB, 20 * GB]


def test_several_whole_gpus_and_gpu_mem_as_a_floor_for_each():
    free = FreeCapacity(Capacity(cpu=8, mem=GB, devices=(
        GpuDevice(0, "GPU-0", mem=24 * GB), GpuDevice(1, "GPU-1", mem=80 * GB),
        GpuDevice(2, "GPU-2", mem=80 * GB))))
    got = start(free, [t("two", gpu=2, gpu_mem=40 * GB), t("one", gpu=1)])
    assert got == {"two": (1, 2), "one": (0,)}


shapes = st.sampled_from([Resources(cpu=0, gpu=g, gpu_mem=m)
                          for g in (0, 0.1, 0.25, 0.5, 1, 2) for m in (0, 10 * GB, 50 * GB)
                          if g or m])


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(shapes, st.booleans()), max_size=40))
def test_the_books_never_hand_out_more_than_a_device_has(steps):
    free = FreeCapacity(cards(3))
    held: list[tuple[Resources, tuple[int, ...], int]] = []
    for r, give_back in steps:
        if give_back and held:
            free.give(*held.pop(0))
        elif free.fits(r):
            gpus, slot = free.take(r)
            held.append((r, gpus, slot))
        share = [0.0] * 3
        mem = [0] * 3
        whole = [0] * 3
        for h, gpus, _ in held:
            for p in gpus:
                if h.gpu >= 1:
                    whole[p] += 1
                else:
                    share[p] += h.gpu
                    mem[p] += h.gpu_mem
        for p in range(3):
            assert share[p] <= 1 + 1e-9 and mem[p] <= 80 * GB
            assert whole[p] <= 1 and not (whole[p] and (share[p] or mem[p]))


def test_the_sampler_gives_each_attempt_its_own_processes_on_its_own_devices():
    from gristmill.core.run.gpu_sampler import GpuSampler
    envs = {1: {"GRISTMILL_RUN_ID": "r", "GRISTMILL_TASK": "a", "GRISTMILL_ATTEMPT": "1"},
            2: {"GRISTMILL_RUN_ID": "r", "GRISTMILL_TASK": "a", "GRISTMILL_ATTEMPT": "1"},
            3: {"GRISTMILL_RUN_ID": "other", "GRISTMILL_TASK": "a", "GRISTMILL_ATTEMPT": "1"},
            4: {"GRISTMILL_RUN_ID": "r", "GRISTMILL_TASK": "m", "GRISTMILL_ATTEMPT": "2"}}
    samples = iter([
        ([(1, "GPU-0", 100), (2, "GPU-0", 50), (3, "GPU-0", 999), (1, "GPU-1", 7),
          (4, "GPU-P", 30)], {"GPU-0": 20.0, "GPU-1": 90.0, "GPU-P": 55.0}),
        ([(1, "GPU-0", 400), (4, "MIG-9", 10)], {"GPU-0": 60.0}),
    ])
    s = GpuSampler("r", every=3600, read=lambda uuids: next(samples),
                   environ=lambda pid: envs.get(pid, {}))
    s.begin("a", 1, ("GPU-0",))
    s.begin("m", 2, ("MIG-9",), parents=("GPU-P",))
    s.close()                     # its thread never samples: these are taken by hand
    assert s.end("nobody", 1) == (None, None)
    s.sample()
    s.sample()
    # a: its two processes on its device (not another run's, not its memory elsewhere).
    assert s.end("a", 1) == (400, 40.0)
    # m, a MIG instance: its memory under its GPU's UUID counts; that GPU's load does not.
    assert s.end("m", 2) == (30, None)
