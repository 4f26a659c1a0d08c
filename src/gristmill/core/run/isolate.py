"""A task's ``isolation``, for the executor: the tools checked before a run, and a
wrapper per attempt that turns each command's argv into a sandboxed or container one.

``check_isolation`` runs before anything starts: a sandbox task needs bwrap, a container
task its engine and image; what is missing is an error naming the task, what is missing
and how to install it (exit status 2). It also removes containers a crashed run left.

``wrapper(task, root, job_id, attempt, env)`` gives ``None`` for a plain process, else an
object with ``argv(argv, index)``, ``kill()``, ``finish(ok, log_path) -> str``
(a problem to add to the attempt's message, or "") and ``abandon()``.
"""

from __future__ import annotations

import os
import shutil
from typing import Iterable, Mapping

from ..errors import WorkflowError
from ..workflow import PROCESS, Task
from . import container as _container
from .sandbox import STAGE_PREFIX, Offline, Sandbox

INSTALL = {
    "bwrap": "install bubblewrap (Debian/Ubuntu: apt-get install bubblewrap; Fedora: "
             "dnf install bubblewrap)",
    "podman": "install podman (Debian/Ubuntu: apt-get install podman; Fedora: dnf install "
              "podman) or docker",
    "docker": "install docker (https://docs.docker.com/engine/install/) or use podman",
}


def find_tool(name: str, env: Mapping[str, str] | None = None) -> str | None:
    path = (env if env is not None else os.environ).get("PATH", os.defpath)
    return shutil.which(name, path=path)


def find_engine(wanted: str, env: Mapping[str, str] | None = None) -> str | None:
    """The container engine's program: ``wanted``, or podman, else docker."""
    for name in ((wanted,) if wanted else ("podman", "docker")):
        found = find_tool(name, env)
        if found:
            return found
    return None


def check_isolation(tasks: Iterable[Task], workflow_path: str, root: str,
                    clean: bool = True, local: bool = True) -> None:
    """Raise ``WorkflowError`` at the first task whose isolation cannot be had here.

    ``clean``: also remove what crashed runs left (containers, sandbox stages).
    ``local``: the tasks run as local processes (not on a Dask cluster, which gives no
    isolation: a task that asks for one is an error rather than run without it)."""
    # ``is`` first: most tasks hold PROCESS itself, and a dataclass == is a call each
    boxed = [t for t in tasks if t.isolation is not PROCESS and t.isolation != PROCESS]
    if not boxed:
        return
    if not local:
        t = boxed[0]
        raise WorkflowError(f"task {t.name!r} asks for isolation ({t.isolation.describe()}), "
                            "which only a local run gives, not a Dask cluster: run it without "
                            "--dask", t.location, path=workflow_path)
    sandboxed = [t for t in boxed if t.isolation.kind == "sandbox"]
    offline = [t for t in boxed if t.isolation.kind == "process"]
    if (sandboxed or offline) and find_tool("bwrap") is None:
        t = (sandboxed or offline)[0]
        n = len(sandboxed or offline) - 1
        more = f" (and {n} more)" if n else ""
        what = ("has isolation = \"sandbox\"" if sandboxed else
                "has network = false (a network of its own)")
        raise WorkflowError(f"task {t.name!r}{more} {what}, which needs "
                            f"bubblewrap (bwrap), not found on PATH: {INSTALL['bwrap']}",
                            t.location, path=workflow_path)
    engines_used: set[str] = set()
    for (wanted, image), t in _container.images_of(boxed).items():
        engine = find_engine(wanted)
        if engine is None:
            what = wanted or "podman or docker"
            raise WorkflowError(f"task {t.name!r} runs in container {image}, which needs "
                                f"{what}, not found on PATH: {INSTALL[wanted or 'podman']}",
                                t.location, path=workflow_path)
        bad = _container.bad_mount_path(t, root)
        if bad:
            raise WorkflowError(f"task {t.name!r} runs in a container, but the folder {bad!r} "
                                "holds ':' or ',', which a container engine cannot mount",
                                t.location, path=workflow_path)
        if clean and engine not in engines_used:
            _container.remove_leftovers(engine)
        engines_used.add(engine)
        problem = _container.check_image(engine, image)
        if problem == "not found":
            raise WorkflowError(f"task {t.name!r} runs in container image {image!r}, which "
                                f"{os.path.basename(engine)} does not have (pull or build it "
                                f"first: {os.path.basename(engine)} pull {image})",
                                t.location, path=workflow_path)
        if problem:
            raise WorkflowError(f"task {t.name!r} runs in container image {image!r}, but "
                                f"{os.path.basename(engine)} cannot tell whether it has it: "
                                f"{problem}", t.location, path=workflow_path)
    if clean and sandboxed:
        remove_stale_stages(root, sandboxed)


def remove_stale_stages(root: str, tasks: list[Task]) -> None:
    """Stages left in the workflow folder by a run that did not end (its pid is gone)."""
    folders = {Sandbox("", t, root, 0).base for t in tasks}
    for folder in folders:
        try:
            names = [n for n in os.listdir(folder) if n.startswith(STAGE_PREFIX)]
        except OSError:
            continue
        for name in names:
            pid = name[len(STAGE_PREFIX):].split("-", 1)[0]
            if pid.isdigit() and _container._alive(int(pid)):
                continue
            shutil.rmtree(os.path.join(folder, name), ignore_errors=True)


def wrapper(task: Task, root: str, job_id: int, attempt: int, env: Mapping[str, str]):
    """The wrapper of one attempt, or None for a plain process (with its network)."""
    kind = task.isolation.kind
    if kind == "sandbox":
        return Sandbox(find_tool("bwrap", env) or "bwrap", task, root, job_id)
    if kind == "container":
        engine = find_engine(task.isolation.engine, env) or task.isolation.engine or "podman"
        return _container.Container(engine, task, root, env.get("GRISTMILL_RUN_ID", "run"),
                                    attempt, env)
    if not task.isolation.network:
        return Offline(find_tool("bwrap", env) or "bwrap", task)
    return None
