"""Which GPUs Gristmill finds, and which it may hand out: a fake nvidia-smi or NVML."""

from __future__ import annotations

import sys

import pytest

from gristmill.core.decide.capacity import detect_capacity, detect_gpus
from gristmill.core.decide.gpus import detect_devices
from gristmill.core.workflow import CapacityOverride

from fake_gpu import FakeSmi, fake_pynvml, gpu, mig_uuid, uuid

MIB = 1024 ** 2


@pytest.fixture
def no_nvml(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)      # import pynvml fails
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.delenv("NVIDIA_VISIBLE_DEVICES", raising=False)


def smi(tmp_path, monkeypatch, gpus, broken=False) -> FakeSmi:
    fake = FakeSmi(tmp_path / "smi", gpus, broken)
    monkeypatch.setenv("PATH", fake.path())
    return fake


def mig_machine() -> list[dict]:
    return [gpu(0, name="NVIDIA A100-SXM4-80GB",
                mig=[{"profile": "3g.40gb", "uuid": mig_uuid(0, 0), "total_mib": 40192},
                     {"profile": "1g.10gb", "uuid": mig_uuid(0, 1), "total_mib": 9856}]),
            gpu(1, name="NVIDIA A100-SXM4-80GB")]


def test_no_nvidia_smi_and_a_broken_driver_are_zero_gpus_without_an_error(tmp_path, monkeypatch,
                                                                          no_nvml):
    monkeypatch.setenv("PATH", str(tmp_path))          # nothing there
    assert detect_devices() == ()
    assert detect_gpus() == 0
    fake = smi(tmp_path, monkeypatch, [gpu(0)], broken=True)
    assert detect_devices() == ()
    assert detect_capacity(CapacityOverride(cpu=1, mem=1)).gpu == 0
    assert fake.calls()                                  # it was asked, and failed


def test_one_gpu_with_its_index_uuid_name_and_memory(tmp_path, monkeypatch, no_nvml):
    smi(tmp_path, monkeypatch, [gpu(0, name="NVIDIA H200", total_mib=143771, used_mib=1024)])
    [d] = detect_devices()
    assert (d.index, d.uuid, d.name, d.mem, d.used, d.word, d.mig) == \
        (0, uuid(0), "NVIDIA H200", 143771 * MIB, 1024 * MIB, "0", False)


def test_eight_gpus_are_named_by_index(tmp_path, monkeypatch, no_nvml):
    smi(tmp_path, monkeypatch, [gpu(i) for i in range(8)])
    devices = detect_devices()
    assert [d.word for d in devices] == [str(i) for i in range(8)]
    assert [d.uuid for d in devices] == [uuid(i) for i in range(8)]
    assert detect_capacity(CapacityOverride(cpu=1, mem=1)).gpu == 8


def test_mig_instances_are_devices_of_their_own_named_by_uuid(tmp_path, monkeypatch, no_nvml):
    smi(tmp_path, monkeypatch, mig_machine())
    devices = detect_devices()
    assert [d.word for d in devices] == [mig_uuid(0, 0), mig_uuid(0, 1), "1"]
    assert [d.mig for d in devices] == [True, True, False]
    assert devices[0].parent == uuid(0) and devices[0].index == 0
    assert devices[0].mem == 40 * 1000 ** 3 and devices[1].mem == 10 * 1000 ** 3


@pytest.mark.parametrize("var, value, words", [
    ("CUDA_VISIBLE_DEVICES", "2,3", ["2", "3"]),
    ("CUDA_VISIBLE_DEVICES", "6, 1", ["6", "1"]),                   # the user's order
    ("CUDA_VISIBLE_DEVICES", f"{uuid(5)},{uuid(7)}", [uuid(5), uuid(7)]),
    ("CUDA_VISIBLE_DEVICES", uuid(4)[:12], [uuid(4)[:12]]),          # a UUID prefix
    ("CUDA_VISIBLE_DEVICES", "3,9,4", ["3"]),                         # CUDA stops at a bad one
    ("CUDA_VISIBLE_DEVICES", "", []),
    ("NVIDIA_VISIBLE_DEVICES", "0,7", ["0", "7"]),
    ("NVIDIA_VISIBLE_DEVICES", "all", [str(i) for i in range(8)]),
    ("NVIDIA_VISIBLE_DEVICES", "none", []),
])
def test_the_users_restriction_is_all_there_is_named_as_the_user_named_it(
        tmp_path, monkeypatch, no_nvml, var, value, words):
    smi(tmp_path, monkeypatch, [gpu(i) for i in range(8)])
    monkeypatch.setenv(var, value)
    devices = detect_devices()
    assert [d.word for d in devices] == words
    for d in devices:          # each word names the device it stands for
        assert d.uuid.startswith(d.word) or d.index == int(d.word)


def test_nvidia_visible_devices_of_a_container_names_the_hosts_devices(tmp_path, monkeypatch,
                                                                       no_nvml):
    # docker run --gpus '"device=2,3"': the container sees two GPUs, numbered 0 and 1.
    smi(tmp_path, monkeypatch, [gpu(0), gpu(1)])
    monkeypatch.setenv("NVIDIA_VISIBLE_DEVICES", "2,3")
    assert [d.word for d in detect_devices()] == ["0", "1"]
    # CUDA_VISIBLE_DEVICES is the user's own: a word naming nothing ends the list there.
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3")
    assert detect_devices() == ()


def test_a_restriction_naming_a_mig_gpu_gives_its_instances(tmp_path, monkeypatch, no_nvml):
    smi(tmp_path, monkeypatch, mig_machine())
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    assert [d.word for d in detect_devices()] == [mig_uuid(0, 0), mig_uuid(0, 1)]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", f"{mig_uuid(0, 1)},1")
    assert [d.word for d in detect_devices()] == [mig_uuid(0, 1), "1"]


def test_nvml_is_read_first_and_nvidia_smi_is_not_asked(tmp_path, monkeypatch, no_nvml):
    fake = smi(tmp_path, monkeypatch, [gpu(0)])
    nv = fake_pynvml(mig_machine())
    monkeypatch.setitem(sys.modules, "pynvml", nv)
    devices = detect_devices()
    assert [d.word for d in devices] == [mig_uuid(0, 0), mig_uuid(0, 1), "1"]
    assert devices[0].mem == 40192 * MIB and devices[0].name == "MIG 3g.40gb"
    assert devices[2].name == "NVIDIA A100-SXM4-80GB"
    assert fake.calls() == []
    assert nv.calls == ["init", "shutdown"]


def test_an_nvml_without_a_driver_falls_back_to_nvidia_smi(tmp_path, monkeypatch, no_nvml):
    smi(tmp_path, monkeypatch, [gpu(0), gpu(1)])
    nv = fake_pynvml([])

    def no_driver():
        raise nv.NVMLError("Driver Not Loaded")
    nv.nvmlInit = no_driver
    monkeypatch.setitem(sys.modules, "pynvml", nv)
    assert [d.uuid for d in detect_devices()] == [uuid(0), uuid(1)]


def test_capacity_counts_only_gpus_with_little_memory_in_use(tmp_path, monkeypatch, no_nvml):
    smi(tmp_path, monkeypatch, [gpu(0, used_mib=40000), gpu(1, used_mib=500), gpu(2)])
    cap = detect_capacity(CapacityOverride(cpu=1, mem=1, gpu_mem_used_below=0.10))
    assert [d.word for d in cap.devices] == ["1", "2"]
    assert detect_capacity(CapacityOverride(cpu=1, mem=1)).gpu == 3
    # [capacity] gpu = N: the first N found (and no detection at all for 0).
    assert [d.word for d in detect_capacity(CapacityOverride(cpu=1, mem=1, gpu=2)).devices] == \
        ["0", "1"]
    assert detect_capacity(CapacityOverride(cpu=1, mem=1, gpu=0)).devices == ()
