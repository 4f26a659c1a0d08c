"""A GPU as the rest of the core speaks of it: one device a task can be handed.

Detection (``decide.gpus``) makes these; the books (``decide.capacity``) hold shares
and memory per device; the engine names them in ``CUDA_VISIBLE_DEVICES``; events and
history carry them. A MIG instance is a device of its own (``mig``), handed out by
its UUID.
"""

from __future__ import annotations

from dataclasses import dataclass

from .sizes import format_size


@dataclass(frozen=True, slots=True)
class GpuDevice:
    index: int                 # nvidia-smi's index (a MIG instance: its GPU's)
    uuid: str = ""             # "GPU-…" or "MIG-…"; "" when not known ([capacity] gpu = N)
    name: str = ""             # "NVIDIA H200"; a MIG instance: its profile, "MIG 1g.10gb"
    mem: int = 0               # total memory, bytes; 0: not known
    used: int = 0              # bytes in use when it was detected
    handle: str = ""           # its word in CUDA_VISIBLE_DEVICES: as the user named it
    mig: bool = False
    parent: str = ""           # a MIG instance: its GPU's UUID

    @property
    def word(self) -> str:
        """What goes into a task's ``CUDA_VISIBLE_DEVICES`` for this device."""
        return self.handle or self.uuid or str(self.index)

    def describe(self) -> str:
        """``0 GPU-5f0e… (NVIDIA H200, 141 GB)``: index, UUID and what is known."""
        text = f"{self.index} {self.uuid}" if self.uuid else str(self.index)
        extra = [x for x in (self.name, format_size(self.mem) if self.mem else "") if x]
        return f"{text} ({', '.join(extra)})" if extra else text

    def as_json(self) -> dict:
        return {"index": self.index, "uuid": self.uuid, "name": self.name, "mem": self.mem,
                "visible_as": self.word, "mig": self.mig}


def describe_devices(devices: tuple[GpuDevice, ...] | list[GpuDevice]) -> str:
    return ", ".join(d.describe() for d in devices)
