"""``gristmill doctor``: what this machine offers for running tasks, in words.

Each check says what it found, what it enables, and how to install what is missing
(Debian/Ubuntu and Fedora package names). ``report()`` is the text the CLI prints and
the app's Help → System Check shows; nothing here fails: a check that cannot be made
says so.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import shutil
import subprocess
from dataclasses import dataclass

from . import cgroups


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    found: str          # what is there (or why not)
    enables: str
    install: str = ""   # how to get it, when missing


def _version(argv: list[str], timeout: float = 10.0) -> str:
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                           stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"cannot run it: {exc}"
    out = (p.stdout or p.stderr).strip().splitlines()
    return out[0].strip() if out else f"exit status {p.returncode}"


def _program(name: str, names: list[str], enables: str, install: str,
             version_arg: str = "--version") -> Check:
    found = [f"{_version([path, version_arg])} ({path})"
             for path in filter(None, map(shutil.which, names))]
    if found:
        return Check(name, True, "; ".join(found), enables)
    return Check(name, False, f"not found ({', '.join(names)} not on PATH)", enables, install)


def _cgroup_lines() -> list[str]:
    """Every cgroup hierarchy mounted, with its controllers and whether we may write."""
    lines = []
    own = cgroups.own_cgroups()
    for m in cgroups.mounts():
        if m.kind == "cgroup2":
            here = cgroups._dir(m, own.get("", "/")) if "" in own else ""
            try:
                ctl = cgroups._read(os.path.join(here or m.point, "cgroup.controllers")).split()
            except OSError:
                ctl = []
            writable = bool(here) and os.access(here, os.W_OK)
            lines.append(f"v2 at {m.point}: controllers {', '.join(ctl) or 'none'}; "
                         f"Gristmill's cgroup {'is' if writable else 'is not'} writable")
        else:
            ctls = sorted(c for c in m.controllers if c in _V1_CONTROLLERS or
                          c.startswith("name="))
            if not ctls:
                continue
            key = next((c for c in ctls if not c.startswith("name=")), ctls[0])
            here = cgroups._dir(m, own[key]) if key in own else ""
            writable = bool(here) and os.access(here, os.W_OK)
            lines.append(f"v1 {','.join(ctls)} at {m.point}"
                         f"{' (writable)' if writable else ' (read-only)'}")
    return lines


_V1_CONTROLLERS = {"cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio",
                   "pids", "net_cls", "net_prio", "perf_event", "hugetlb", "rdma", "misc"}


def check_cgroups() -> Check:
    o = cgroups.offer()
    hierarchies = _cgroup_lines()
    if o.version:
        what = [f"tasks run in cgroup v{o.version}"]
        what.append("memory: kernel limit, OOM kills told in words, peak from the kernel"
                    if o.memory else "memory: sampled (no memory controller to use)")
        what.append("cpu quota: possible (GRISTMILL_CPU_QUOTA=1)" if o.cpu else
                    "cpu quota: no cpu controller to use")
        found = "; ".join(what)
    else:
        found = f"no cgroup for tasks: {o.why_not}"
    if hierarchies:
        found += "\n" + "\n".join(f"  {h}" for h in hierarchies)
    ok = bool(o.version and o.memory)
    install = ("" if ok else
               "cgroup v2 is the default on Debian 11+, Ubuntu 21.10+ and Fedora 31+; as a "
               "user run `systemd-run --user --scope -p Delegate=yes gristmill run …` so "
               "Gristmill gets a cgroup of its own; cgroup v1 needs root")
    return Check("cgroups", ok, found,
                 "a task's declared mem as a kernel limit; its whole process tree "
                 "(setsid, double forks, GNU timeout) killed on cancel and timeout", install)


def check_gpus() -> Check:
    path = shutil.which("nvidia-smi")
    enables = "gpu = N: tasks get their own GPUs (CUDA_VISIBLE_DEVICES)"
    install = ("nvidia-smi comes with the NVIDIA driver: apt install nvidia-driver "
               "(Debian, non-free) or nvidia-utils-VERSION (Ubuntu); dnf install "
               "xorg-x11-drv-nvidia-cuda (Fedora, RPM Fusion)")
    if not path:
        return Check("GPUs", False, "nvidia-smi not found", enables, install)
    try:
        p = subprocess.run([path, "-L"], capture_output=True, text=True, timeout=20,
                           stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError) as exc:
        return Check("GPUs", False, f"nvidia-smi cannot run: {exc}", enables, install)
    gpus = [line.strip() for line in p.stdout.splitlines() if line.startswith("GPU ")]
    if p.returncode != 0 or not gpus:
        why = (p.stderr or p.stdout).strip().splitlines()
        return Check("GPUs", False, f"nvidia-smi finds none ({why[0] if why else p.returncode})",
                     enables, install)
    return Check("GPUs", True, f"{len(gpus)}: " + "; ".join(gpus), enables)


def check_dask() -> Check:
    enables = "gristmill run --dask ADDRESS|local: tasks on a Dask cluster"
    install = "pip install distributed (or: apt install python3-distributed; " \
              "dnf install python3-distributed)"
    if importlib.util.find_spec("distributed") is None:
        return Check("Dask", False, "the distributed package is not installed", enables, install)
    try:
        version = importlib.metadata.version("distributed")
    except importlib.metadata.PackageNotFoundError:
        version = "version unknown"
    return Check("Dask", True, f"distributed {version}", enables)


def check_make_shell() -> Check:
    """The recipe shell make runs Makefiles' recipes through: the compiled helper, or
    the Python fallback where no C compiler is found."""
    from .makeshell import helper
    enables = ("gristmill run on a Makefile: GNU make runs each recipe through it, and "
               "Gristmill packs, records and guards it")
    try:
        path, kind = helper()
    except OSError as exc:
        return Check("make recipe shell", False, f"cannot be made: {exc}", enables)
    if kind == "compiled":
        return Check("make recipe shell", True, f"compiled helper {path}", enables)
    return Check("make recipe shell", True, f"the Python fallback {path} (no C compiler "
                 "found; the compiled helper costs less per recipe)", enables,
                 "apt install gcc / dnf install gcc")


def checks() -> list[Check]:
    return [
        check_make_shell(),
        check_cgroups(),
        _program("bubblewrap", ["bwrap"], 'isolation = "sandbox": a task sees only what it '
                 "declares", "apt install bubblewrap / dnf install bubblewrap"),
        _program("containers", ["podman", "docker"], 'isolation = "container": a task runs '
                 "in an image", "apt install podman / dnf install podman (or docker: apt "
                 "install docker.io / dnf install moby-engine)"),
        _program("strace", ["strace"], "gristmill run --audit: the files a task reads and "
                 "writes, against what it declares", "apt install strace / dnf install strace",
                 version_arg="-V"),
        check_gpus(),
        check_dask(),
    ]


def report(items: list[Check] | None = None) -> str:
    """The whole check as text: one block per item."""
    items = checks() if items is None else items
    out = ["What this machine offers Gristmill's tasks:", ""]
    for c in items:
        first, *rest = c.found.splitlines()
        out.append(f"{'✓' if c.ok else '✗'} {c.name}: {first}")
        out += [f"    {line.strip()}" for line in rest]
        out.append(f"    enables: {c.enables}")
        if not c.ok and c.install:
            out.append(f"    install: {c.install}")
    return "\n".join(out)
