"""``isolation = "container"``: a task's commands run in a container image (podman or docker).

Each command is one ``ENGINE run --rm`` named ``gristmill-<run>-<task>-<attempt>``: the
workflow folder mounted at the same path (and the task's cwd, if it lies elsewhere), the
task's cwd as the working directory, the invoking user's uid and gid (podman without
root: ``--userns=keep-id``), the task's environment (its ``env`` and Gristmill's
``GRISTMILL_*`` variables, by name: values never appear in a process list), declared
``cpu``/``mem`` as ``--cpus``/``--memory``, assigned GPUs as ``--device
nvidia.com/gpu=N`` (podman, CDI) or ``--gpus device=N`` (docker), no network unless
``network = true``, then the task's own ``options``.

Killing the engine's client does not always stop the container, so a kill also asks the
engine to kill the container by name, and a killed attempt ends with ``rm -f`` of it.
Each container carries the label ``gristmill.pid``: ``remove_leftovers`` (at a run's
start) removes containers of Gristmill processes that are gone (a crash).
"""

from __future__ import annotations

import os
import re
import subprocess
from typing import Iterable, Mapping

from ..record.store import _pid_exists
from .sandbox import log_tail
from ..workflow import Task, blake2b

PREFIX = "gristmill-"
LABEL = "gristmill.pid"
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def container_name(run_id: str, task: str, attempt: int, index: int = 0) -> str:
    """``gristmill-<run>-<task>-<attempt>`` with what an engine refuses in a name made
    safe (and a hash of the task's name then, so that two names never meet)."""
    safe = _UNSAFE.sub("_", task)[:80]
    if safe != task:
        safe += "-" + blake2b(task.encode(), digest_size=4).hexdigest()
    name = f"{PREFIX}{_UNSAFE.sub('_', run_id)}-{safe}-{attempt}"
    return f"{name}-{index + 1}" if index else name


def _under(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def mounts(task: Task, root: str) -> list[tuple[str, bool]]:
    """(folder, writable) to mount at the same path: the workflow folder, the task's cwd
    and the folders of inputs (read-only) and outputs outside it."""
    root = os.path.normpath(root)
    found: list[tuple[str, bool]] = [(root, True)]

    def add(folder: str, writable: bool) -> None:
        for i, (f, w) in enumerate(found):
            if _under(folder, f) and (w or not writable):
                return
        found.append((folder, writable))
    add(os.path.normpath(task.cwd), True)
    for out in task.outputs:
        add(os.path.dirname(os.path.normpath(os.path.join(root, out))), True)
    for inp in task.inputs:
        path = os.path.normpath(os.path.join(root, inp))
        add(path if os.path.isdir(path) else os.path.dirname(path), False)
    return found


def bad_mount_path(task: Task, root: str) -> str:
    """A folder the engine's ``-v SRC:DST`` cannot take (``:`` or ``,`` in it), or ""."""
    for folder, _ in mounts(task, root):
        if ":" in folder or "," in folder:
            return folder
    return ""


class Container:
    """One attempt of one task in a container."""

    def __init__(self, engine: str, task: Task, root: str, run_id: str, attempt: int,
                 env: Mapping[str, str]):
        self.engine = engine                  # the engine's program, absolute
        self.kind = os.path.basename(engine)  # "podman" or "docker"
        self.task = task
        self.root = root
        self.run_id = run_id
        self.attempt = attempt
        self.name = ""
        self._killers: list[subprocess.Popen] = []
        self._killed = False
        self._fixed = self._fixed_args(env)

    def _fixed_args(self, env: Mapping[str, str]) -> list[str]:
        task, iso = self.task, self.task.isolation
        args = ["--rm", "--label", f"{LABEL}={os.getpid()}"]
        for folder, writable in mounts(task, self.root):
            args += ["-v", f"{folder}:{folder}" + ("" if writable else ":ro")]
        args += ["-w", task.cwd]
        if self.kind == "podman" and os.geteuid() != 0:
            args.append("--userns=keep-id")     # rootless: the user is the user inside
        else:
            args += ["--user", f"{os.getuid()}:{os.getgid()}"]
        if not iso.network:
            args += ["--network", "none"]
        names = [k for k, _ in task.env]
        names += [k for k in ("GRISTMILL_RUN_ID", "GRISTMILL_TASK", "GRISTMILL_ATTEMPT")
                  if k in env]
        for k in dict.fromkeys(names):
            args += ["--env", k]
        r = task.resources
        if r.cpu > 0:
            args += ["--cpus", f"{r.cpu:g}"]
        if r.mem > 0:
            args += ["--memory", f"{r.mem}b"]
        gpus = [g for g in env.get("CUDA_VISIBLE_DEVICES", "").split(",") if g.strip()] \
            if r.gpu else []
        if gpus:
            if self.kind == "docker":
                args += ["--gpus", f'"device={",".join(gpus)}"']
            else:
                for g in gpus:
                    args += ["--device", f"nvidia.com/gpu={g}"]
        args += list(iso.options)
        return args

    def argv(self, argv: list[str], index: int) -> list[str]:
        self.name = container_name(self.run_id, self.task.name, self.attempt, index)
        return [self.engine, "run", "--name", self.name, *self._fixed,
                self.task.isolation.image, *argv]

    def kill(self) -> None:
        """Ask the engine to kill the container (its client may not pass the signal on)."""
        if not self.name or self._killed:
            return
        self._killed = True
        try:
            self._killers.append(subprocess.Popen(
                [self.engine, "kill", self.name], stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True))
        except OSError:
            pass

    def finish(self, ok: bool, log_path: str | None) -> str:
        """A killed attempt: its container removed (``--rm`` needs the client alive)."""
        if self._killed:
            self.remove()
        for p in self._killers:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        self._killers = []
        if not ok and not self._killed and "error setting rlimit" in log_tail(log_path):
            return (f"{self.kind} cannot give the container its default rlimits on this machine "
                    "(over the hard limits here): set default_ulimits in "
                    "/etc/containers/containers.conf, or add --ulimit options to the task's "
                    "container (see Isolation in docs/WORKFLOW.md)")
        return ""

    def remove(self) -> None:
        if not self.name:
            return
        try:
            subprocess.run([self.engine, *_rm_now(self.engine), self.name], stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)
        except (OSError, subprocess.TimeoutExpired):
            pass

    def abandon(self) -> None:
        self._killed = True
        self.finish(False, None)


def remove_leftovers(engine: str) -> list[str]:
    """Remove the containers of Gristmill runs whose process is gone; their names."""
    try:
        p = subprocess.run([engine, "ps", "-a", "--filter", f"name=^{PREFIX}",
                            "--filter", f"label={LABEL}",
                            "--format", '{{.Names}} {{index .Labels "%s"}}' % LABEL],
                           stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return []
    if p.returncode != 0:
        return []
    gone = []
    for line in p.stdout.splitlines():
        name, _, pid = line.partition(" ")
        if not name.startswith(PREFIX):
            continue
        if pid.strip().isdigit() and _alive(int(pid)):
            continue
        gone.append(name)
    if gone:
        try:
            subprocess.run([engine, *_rm_now(engine), *gone], stdin=subprocess.DEVNULL,
                           capture_output=True, timeout=120)
        except (OSError, subprocess.TimeoutExpired):
            pass
    return gone


def _rm_now(engine: str) -> list[str]:
    """``rm -f`` without the grace: a shell as the container's pid 1 ignores SIGTERM, and
    podman would wait 10 s for it (docker's ``rm -f`` kills at once)."""
    return ["rm", "-f", "-t", "0"] if os.path.basename(engine) == "podman" else ["rm", "-f"]


def _alive(pid: int) -> bool:
    return pid == os.getpid() or _pid_exists(pid)


def check_image(engine: str, image: str) -> str:
    """"" when the engine has ``image``; else why not, in words."""
    try:
        p = subprocess.run([engine, "image", "inspect", "--format", "{{.Id}}", image],
                           stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           timeout=60)
    except subprocess.TimeoutExpired:
        return f"{os.path.basename(engine)} did not answer within 60 s"
    except OSError as exc:
        return f"cannot run {engine}: {exc.strerror or exc}"
    if p.returncode == 0:
        return ""
    said = " ".join(p.stderr.split())
    if re.search(r"no such (object|image)|image not known|not found", said, re.I):
        return "not found"
    return said[:300] or f"{os.path.basename(engine)} image inspect failed ({p.returncode})"


def images_of(tasks: Iterable[Task]) -> dict[tuple[str, str], Task]:
    """(engine wanted, image) -> the first task asking for it."""
    out: dict[tuple[str, str], Task] = {}
    for t in tasks:
        iso = t.isolation
        if iso.kind == "container":
            out.setdefault((iso.engine, iso.image), t)
    return out
