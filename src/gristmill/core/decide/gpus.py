"""The NVIDIA GPUs this process may use: read through NVML, else ``nvidia-smi``.

``detect_devices()`` lists every GPU (index, UUID, name, total and used memory)
and every MIG instance, through NVML (``import pynvml``, from the optional
``nvidia-ml-py``; ``pip install 'gristmill[gpu]'``) or, where that is missing or
fails, ``nvidia-smi --query-gpu=…`` and ``nvidia-smi -L`` (for MIG). No driver,
no ``nvidia-smi``, or one that fails: no devices, no error.

``visible_devices(found, environ)`` then keeps what the user gave this process:
when ``CUDA_VISIBLE_DEVICES`` (else ``NVIDIA_VISIBLE_DEVICES``) is set, only the
devices it names exist, in its order, each named in a task's
``CUDA_VISIBLE_DEVICES`` by the user's own word (an index, a UUID or a UUID
prefix). A GPU in MIG mode is not a device itself: its MIG instances are, by UUID.
"""

from __future__ import annotations

import os
import re
from typing import Iterable, Mapping

from ..gpu import GpuDevice

MIB = 1024 ** 2
QUERY_GPU = ("--query-gpu=index,uuid,name,memory.total,memory.used",
             "--format=csv,noheader,nounits")
QUERY_APPS = ("--query-compute-apps=pid,gpu_uuid,used_memory", "--format=csv,noheader,nounits")
QUERY_UTIL = ("--query-gpu=uuid,utilization.gpu", "--format=csv,noheader,nounits")
TIMEOUT = 10.0

_GPU_LINE = re.compile(r"^GPU\s+(\d+):\s*(.*?)\s*\(UUID:\s*(GPU-[^)\s]+)\)")
_MIG_LINE = re.compile(r"^\s+MIG\s+(\S+)\s+Device\s+(\d+):\s*\(UUID:\s*(MIG-[^)\s]+)\)")
_MIG_MEM = re.compile(r"\.(\d+)gb", re.IGNORECASE)


# -- reading what is there ------------------------------------------------------------

def _nvml():
    """The ``pynvml`` module, initialised; None when it is missing or has no driver."""
    try:
        import pynvml  # type: ignore[import-not-found]
    except Exception:          # ImportError, or a broken install
        return None
    try:
        pynvml.nvmlInit()
    except Exception:
        return None
    return pynvml


def _text(value) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def _from_nvml(nv) -> list[GpuDevice]:
    out: list[GpuDevice] = []
    try:
        for i in range(nv.nvmlDeviceGetCount()):
            h = nv.nvmlDeviceGetHandleByIndex(i)
            uuid = _text(nv.nvmlDeviceGetUUID(h))
            info = nv.nvmlDeviceGetMemoryInfo(h)
            out.append(GpuDevice(i, uuid, _text(nv.nvmlDeviceGetName(h)), int(info.total),
                                 int(info.used)))
            try:
                mig_on = nv.nvmlDeviceGetMigMode(h)[0] == 1
            except Exception:            # not a MIG-capable GPU
                mig_on = False
            if not mig_on:
                continue
            for j in range(nv.nvmlDeviceGetMaxMigDeviceCount(h)):
                try:
                    m = nv.nvmlDeviceGetMigDeviceHandleByIndex(h, j)
                except Exception:        # no instance in this slot
                    continue
                minfo = nv.nvmlDeviceGetMemoryInfo(m)
                out.append(GpuDevice(i, _text(nv.nvmlDeviceGetUUID(m)),
                                     _text(nv.nvmlDeviceGetName(m)), int(minfo.total),
                                     int(minfo.used), mig=True, parent=uuid))
    finally:
        try:
            nv.nvmlShutdown()
        except Exception:
            pass
    return out


def nvidia_smi(*args: str, environ: Mapping[str, str] | None = None) -> str | None:
    """``nvidia-smi ARGS``' output; None when it is not there or fails."""
    import shutil        # here, not at the top: a run with no GPU task never asks
    import subprocess
    env = dict(os.environ if environ is None else environ)
    exe = shutil.which("nvidia-smi", path=env.get("PATH"))
    if not exe:
        return None
    # nvidia-smi lists every GPU whatever CUDA_VISIBLE_DEVICES says: visible_devices
    # applies the restriction.
    try:
        p = subprocess.run([exe, *args], capture_output=True, text=True, timeout=TIMEOUT,
                           env=env, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError):
        return None
    return p.stdout if p.returncode == 0 else None


def _mib(text: str) -> int:
    try:
        return int(float(text) * MIB)
    except ValueError:       # "[N/A]"
        return 0


def _from_smi(environ: Mapping[str, str] | None = None) -> list[GpuDevice]:
    out = nvidia_smi(*QUERY_GPU, environ=environ)
    if out is None:
        return []
    gpus: list[GpuDevice] = []
    for line in out.splitlines():
        cells = [c.strip() for c in line.split(",")]
        if len(cells) < 5 or not cells[0].isdigit():
            continue
        gpus.append(GpuDevice(int(cells[0]), cells[1], ",".join(cells[2:-2]),
                              _mib(cells[-2]), _mib(cells[-1])))
    listing = nvidia_smi("-L", environ=environ) or ""
    migs: dict[str, list[GpuDevice]] = {}
    current: GpuDevice | None = None
    by_uuid = {g.uuid: g for g in gpus}
    for line in listing.splitlines():
        m = _GPU_LINE.match(line)
        if m:
            current = by_uuid.get(m.group(3))
            continue
        m = _MIG_LINE.match(line)
        if m and current is not None:
            size = _MIG_MEM.search(m.group(1))
            mem = int(size.group(1)) * 1000 ** 3 if size else 0
            migs.setdefault(current.uuid, []).append(
                GpuDevice(current.index, m.group(3), f"MIG {m.group(1)}", mem, mig=True,
                          parent=current.uuid))
    result: list[GpuDevice] = []
    for g in gpus:
        result.append(g)
        result.extend(migs.get(g.uuid, ()))
    return result


def detect_all(environ: Mapping[str, str] | None = None) -> list[GpuDevice]:
    """Every GPU and MIG instance on the machine, ignoring any restriction."""
    nv = _nvml()
    if nv is not None:
        try:
            return _from_nvml(nv)
        except Exception:
            pass               # an NVML that fails halfway: ask nvidia-smi instead
    return _from_smi(environ)


# -- what this process may use --------------------------------------------------------

def restriction(environ: Mapping[str, str]) -> tuple[str, list[str]] | None:
    """(variable, its words) when the user restricted the devices; None when not."""
    text = environ.get("CUDA_VISIBLE_DEVICES")
    if text is not None:
        return "CUDA_VISIBLE_DEVICES", [w.strip() for w in text.split(",") if w.strip()]
    text = environ.get("NVIDIA_VISIBLE_DEVICES")
    if text is None or text.strip().lower() in ("", "all", "void"):
        return None
    if text.strip().lower() == "none":
        return "NVIDIA_VISIBLE_DEVICES", []
    return "NVIDIA_VISIBLE_DEVICES", [w.strip() for w in text.split(",") if w.strip()]


def _usable(found: Iterable[GpuDevice]) -> list[GpuDevice]:
    """The devices a task can be handed: GPUs not in MIG mode, and MIG instances."""
    found = list(found)
    split = {d.parent for d in found if d.mig}
    return [d for d in found if d.mig or d.uuid not in split]


def _instances(gpu: GpuDevice, found: list[GpuDevice]) -> list[GpuDevice]:
    inside = [d for d in found if d.mig and d.parent == gpu.uuid]
    return inside or [gpu]


def visible_devices(found: Iterable[GpuDevice],
                    environ: Mapping[str, str] | None = None) -> tuple[GpuDevice, ...]:
    """The devices this process may hand out, each with the word that names it.

    Without a restriction: every usable device, a GPU named by its index, a MIG instance
    by its UUID. With one: the devices its words name, in its order, named by those
    words (as CUDA does, a word that names no device ends the list). A word naming a GPU
    in MIG mode gives its instances, by UUID. ``NVIDIA_VISIBLE_DEVICES`` with a word that
    names no device seen here is a container's: every device seen is used.
    """
    found = list(found)
    environ = os.environ if environ is None else environ
    limit = restriction(environ)
    if limit is None:
        return tuple(d if d.mig else _named(d, str(d.index)) for d in _usable(found))
    out: list[GpuDevice] = []
    seen: set[str] = set()
    for word in limit[1]:
        if word.isdigit():
            match = [g for g in found if not g.mig and g.index == int(word)]
        else:
            match = [d for d in found if d.uuid and d.uuid.startswith(word)]
        if len(match) != 1:
            if limit[0] == "NVIDIA_VISIBLE_DEVICES":
                # The container runtime's variable, naming the host's devices: inside the
                # container they are renumbered and the others are already hidden.
                return visible_devices(found, {})
            break            # unknown, or an ambiguous UUID prefix: CUDA stops there too
        for d in _instances(match[0], found):
            if d.uuid in seen:
                continue
            seen.add(d.uuid)
            out.append(d if d.mig else _named(d, word))
    return tuple(out)


def _named(d: GpuDevice, word: str) -> GpuDevice:
    from dataclasses import replace
    return replace(d, handle=word)


def detect_devices(environ: Mapping[str, str] | None = None) -> tuple[GpuDevice, ...]:
    """The devices this process may use (``detect_all`` seen through ``visible_devices``)."""
    environ = os.environ if environ is None else environ
    limit = restriction(environ)
    if limit is not None and not limit[1]:
        return ()                 # CUDA_VISIBLE_DEVICES="": none, and nothing to ask
    return visible_devices(detect_all(environ), environ)


def below_use(devices: Iterable[GpuDevice], fraction: float) -> tuple[GpuDevice, ...]:
    """The devices using less than ``fraction`` of their memory now (``[capacity]
    gpu_mem_used_below``); a device whose memory is not known is kept."""
    return tuple(d for d in devices if not d.mem or d.used < fraction * d.mem)


# -- what runs on them now (sampled while tasks run: ``run.gpu_sampler``) --------------

def sample_use(uuids: Iterable[str]) -> tuple[list[tuple[int, str, int]], dict[str, float]] | None:
    """(processes as (pid, device UUID, bytes), utilisation percent per device UUID) of
    these devices now, through NVML, else nvidia-smi; None when neither answers."""
    uuids = list(uuids)
    nv = _nvml()
    if nv is not None:
        try:
            return _use_nvml(nv, uuids)
        except Exception:
            pass
        finally:
            try:
                nv.nvmlShutdown()
            except Exception:
                pass
    apps = nvidia_smi(*QUERY_APPS)
    if apps is None:
        return None
    procs: list[tuple[int, str, int]] = []
    for line in apps.splitlines():
        cells = [c.strip() for c in line.split(",")]
        if len(cells) == 3 and cells[0].isdigit():
            procs.append((int(cells[0]), cells[1], _mib(cells[2])))
    util: dict[str, float] = {}
    for line in (nvidia_smi(*QUERY_UTIL) or "").splitlines():
        cells = [c.strip() for c in line.split(",")]
        if len(cells) == 2:
            try:
                util[cells[0]] = float(cells[1])
            except ValueError:
                pass           # "[N/A]" (a MIG instance)
    return procs, util


def _use_nvml(nv, uuids: list[str]) -> tuple[list[tuple[int, str, int]], dict[str, float]]:
    procs: list[tuple[int, str, int]] = []
    util: dict[str, float] = {}
    for uuid in uuids:
        try:
            h = nv.nvmlDeviceGetHandleByUUID(uuid)
            for p in nv.nvmlDeviceGetComputeRunningProcesses(h):
                procs.append((int(p.pid), uuid, int(p.usedGpuMemory or 0)))
        except Exception:      # a GPU in MIG mode lists its processes per instance
            continue
        try:
            util[uuid] = float(nv.nvmlDeviceGetUtilizationRates(h).gpu)
        except Exception:
            pass               # a MIG instance has none
    return procs, util
