"""A fake ``nvidia-smi`` (and a fake ``pynvml``) with scripted machines, for GPU tests.

``FakeSmi(folder, gpus)`` writes an executable ``nvidia-smi`` into ``folder/bin`` that
answers the queries Gristmill makes from ``folder/machine.json``:

- ``--query-gpu=index,uuid,name,memory.total,memory.used --format=csv,noheader,nounits``
- ``-L`` (with MIG instances under their GPU)
- ``--query-compute-apps=pid,gpu_uuid,used_memory …``: the lines tasks append to
  ``folder/apps.csv`` (``PID, UUID, MiB``); each such call appends a line to
  ``folder/apps.calls`` once it has read them
- ``--query-gpu=uuid,utilization.gpu …``: each GPU's scripted ``util``

``broken=True`` answers as nvidia-smi does on a machine without a working driver
(exit 9). Every call is logged to ``folder/calls.log``.
"""

from __future__ import annotations

import json
import os
import sys
import types
from pathlib import Path

MIB = 1024 ** 2

SCRIPT = r'''#!{python}
import json, os, sys
here = {folder!r}
with open(os.path.join(here, "calls.log"), "a") as f:
    f.write(" ".join(sys.argv[1:]) + "\n")
m = json.load(open(os.path.join(here, "machine.json")))
if m.get("broken"):
    print("NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. "
          "Make sure that the latest NVIDIA driver is installed and running.")
    sys.exit(9)
args = sys.argv[1:]
if args == ["-L"]:
    for g in m["gpus"]:
        print(f"GPU {{g['index']}}: {{g['name']}} (UUID: {{g['uuid']}})")
        for i, mig in enumerate(g.get("mig", [])):
            print(f"  MIG {{mig['profile']}}     Device  {{i}}: (UUID: {{mig['uuid']}})")
elif args and args[0] == "--query-gpu=index,uuid,name,memory.total,memory.used":
    for g in m["gpus"]:
        print(f"{{g['index']}}, {{g['uuid']}}, {{g['name']}}, {{g['total_mib']}}, {{g['used_mib']}}")
elif args and args[0] == "--query-gpu=uuid,utilization.gpu":
    for g in m["gpus"]:
        print(f"{{g['uuid']}}, {{g.get('util', 0)}}")
elif args and args[0] == "--query-compute-apps=pid,gpu_uuid,used_memory":
    try:
        sys.stdout.write(open(os.path.join(here, "apps.csv")).read())
    except OSError:
        pass
    sys.stdout.flush()
    with open(os.path.join(here, "apps.calls"), "a") as f:
        f.write("x\n")
else:
    print("fake nvidia-smi: unknown arguments", args, file=sys.stderr)
    sys.exit(2)
'''


def gpu(index: int, *, name: str = "NVIDIA H100 80GB HBM3", total_mib: int = 81559,
        used_mib: int = 0, util: int = 0, mig: list[dict] | None = None) -> dict:
    return {"index": index, "uuid": uuid(index), "name": name, "total_mib": total_mib,
            "used_mib": used_mib, "util": util, "mig": mig or []}


def uuid(index: int) -> str:
    return f"GPU-{index:08x}-aaaa-bbbb-cccc-{index:012x}"


def mig_uuid(gpu_index: int, n: int) -> str:
    return f"MIG-{gpu_index:04x}{n:04x}-1111-2222-3333-{n:012x}"


class FakeSmi:
    def __init__(self, folder: Path, gpus: list[dict], broken: bool = False):
        self.folder = Path(folder)
        self.bin = self.folder / "bin"
        self.bin.mkdir(parents=True, exist_ok=True)
        self.write(gpus, broken)
        exe = self.bin / "nvidia-smi"
        exe.write_text(SCRIPT.format(python=sys.executable, folder=str(self.folder)))
        exe.chmod(0o755)

    def write(self, gpus: list[dict], broken: bool = False) -> None:
        (self.folder / "machine.json").write_text(json.dumps({"gpus": gpus, "broken": broken}))

    @property
    def apps(self) -> Path:
        return self.folder / "apps.csv"

    @property
    def app_calls(self) -> Path:
        return self.folder / "apps.calls"

    def calls(self) -> list[str]:
        try:
            return (self.folder / "calls.log").read_text().splitlines()
        except OSError:
            return []

    def path(self) -> str:
        return f"{self.bin}{os.pathsep}{os.environ.get('PATH', '')}"


def fake_pynvml(gpus: list[dict]) -> types.ModuleType:
    """A module that answers as ``pynvml`` does for these GPUs (MIG included)."""
    nv = types.ModuleType("pynvml")
    handles = {}

    class NVMLError(Exception):
        pass

    class Mem:
        def __init__(self, total, used):
            self.total, self.used, self.free = total, used, total - used

    def handle(i):
        return ("gpu", i)

    for g in gpus:
        handles[("gpu", g["index"])] = g
        for j, m in enumerate(g.get("mig", [])):
            handles[("mig", g["index"], j)] = m

    nv.NVMLError = NVMLError
    nv.calls = []
    nv.nvmlInit = lambda: nv.calls.append("init")
    nv.nvmlShutdown = lambda: nv.calls.append("shutdown")
    nv.nvmlDeviceGetCount = lambda: len(gpus)
    nv.nvmlDeviceGetHandleByIndex = handle
    nv.nvmlDeviceGetUUID = lambda h: handles[h]["uuid"]
    nv.nvmlDeviceGetName = lambda h: (handles[h]["name"] if h[0] == "gpu"
                                      else f"MIG {handles[h]['profile']}").encode()

    def memory(h):
        d = handles[h]
        if h[0] == "gpu":
            return Mem(d["total_mib"] * MIB, d["used_mib"] * MIB)
        return Mem(d["total_mib"] * MIB, 0)
    nv.nvmlDeviceGetMemoryInfo = memory

    def mig_mode(h):
        if h[0] != "gpu":
            raise NVMLError("not supported")
        return (1 if handles[h].get("mig") else 0, 0)
    nv.nvmlDeviceGetMigMode = mig_mode
    nv.nvmlDeviceGetMaxMigDeviceCount = lambda h: 7

    def mig_handle(h, j):
        key = ("mig", h[1], j)
        if key not in handles:
            raise NVMLError("not found")
        return key
    nv.nvmlDeviceGetMigDeviceHandleByIndex = mig_handle
    return nv
