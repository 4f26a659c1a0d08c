"""Read and write one ``[tasks.NAME]`` table of a gristmill.toml, keeping comments and layout.

Pure Python over tomlkit: only the keys whose values changed are touched, so a
user's comments, key order and formatting survive an edit.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import tomlkit
from tomlkit.items import Table

from gristmill.core.sizes import parse_duration, parse_gpu, parse_size

NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")


@dataclass
class TaskForm:
    """The fields of the Edit Task form, as text a user typed."""

    name: str = ""
    description: str = ""
    commands: list[str] = field(default_factory=list)
    foreach: str = ""
    inputs: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    after: list[str] = field(default_factory=list)
    phony: bool = False
    cpu: str = ""
    mem: str = ""
    gpu: str = ""
    gpu_mem: str = ""
    retries: str = ""
    timeout: str = ""


def validate(form: TaskForm, existing: set[str], original: str | None = None) -> dict[str, str]:
    """Field name -> message, for every field a user must fix. Empty when valid."""
    problems: dict[str, str] = {}
    if not form.name.strip():
        problems["name"] = "a task needs a name"
    elif not NAME_RE.match(form.name.strip()):
        problems["name"] = "use letters, digits, '_', '-' and '.' only"
    elif form.name.strip() != original and form.name.strip() in existing:
        problems["name"] = f"a task named {form.name.strip()!r} already exists"
    if not any(c.strip() for c in form.commands) and not form.phony:
        problems["commands"] = "a task needs at least one command (or mark it phony)"
    if form.cpu.strip():
        try:
            if float(form.cpu) <= 0:
                raise ValueError
        except ValueError:
            problems["cpu"] = "cpu must be a positive number, such as 1 or 0.5"
    if form.mem.strip():
        try:
            parse_size(form.mem.strip())
        except ValueError as e:
            problems["mem"] = str(e)
    if form.gpu.strip():
        try:
            parse_gpu(form.gpu.strip())
        except ValueError as e:
            problems["gpu"] = str(e)
    if form.gpu_mem.strip():
        try:
            parse_size(form.gpu_mem.strip())
        except ValueError as e:
            problems["gpu_mem"] = str(e)
    if form.retries.strip():
        if not form.retries.strip().isdigit():
            problems["retries"] = "retries must be a whole number, such as 0 or 2"
    if form.timeout.strip():
        try:
            parse_duration(form.timeout.strip())
        except ValueError as e:
            problems["timeout"] = str(e)
    unknown = [a for a in form.after if a.strip() and a.strip() not in existing]
    if unknown:
        problems["after"] = "no task named " + ", ".join(repr(a) for a in unknown)
    return problems


def _strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [str(v) for v in value]
    return []


def _text(value: object) -> str:
    return "" if value is None else str(value)


def read_task(path: str | Path, name: str) -> TaskForm:
    doc = tomlkit.parse(Path(path).read_text(encoding="utf-8"))
    table = doc.get("tasks", {}).get(name)
    if table is None:
        raise KeyError(name)
    res = table.get("resources", {}) or {}
    return TaskForm(
        name=name,
        description=_text(table.get("description", "")),
        commands=_strings(table.get("cmd", [])),
        foreach=_text(table.get("foreach", "")),
        inputs=_strings(table.get("inputs", [])),
        outputs=_strings(table.get("outputs", [])),
        after=_strings(table.get("after", [])),
        phony=bool(table.get("phony", False)),
        cpu=_text(res.get("cpu", "")),
        mem=_text(res.get("mem", "")),
        gpu=_text(res.get("gpu", "")),
        gpu_mem=_text(res.get("gpu_mem", "")),
        retries=_text(table.get("retries", "")),
        timeout=_text(table.get("timeout", "")),
    )


def task_names(path: str | Path) -> list[str]:
    doc = tomlkit.parse(Path(path).read_text(encoding="utf-8"))
    return list(doc.get("tasks", {}).keys())


def _number(text: str) -> int | float:
    v = float(text)
    return int(v) if v.is_integer() else v


def _set(table: Table, key: str, value: object) -> None:
    """Set, or remove when empty; leave the key alone when its value is unchanged."""
    empty = value in ("", [], None, False, {})
    if empty:
        if key in table:
            del table[key]
        return
    old = table.get(key)
    plain_old = old.unwrap() if hasattr(old, "unwrap") else old
    if plain_old == value:
        return
    if isinstance(value, list):
        arr = tomlkit.array()
        arr.extend(value)
        if len(value) > 3:
            arr.multiline(True)
        table[key] = arr
    else:
        table[key] = value


def _apply(table: Table, form: TaskForm) -> None:
    commands = [c for c in (c.strip() for c in form.commands) if c]
    old_cmd = table.get("cmd")
    cmd: object = commands
    if len(commands) == 1 and (old_cmd is None or isinstance(old_cmd, str)):
        cmd = commands[0]
    _set(table, "description", form.description.strip())
    _set(table, "foreach", form.foreach.strip())
    _set(table, "cmd", cmd)
    _set(table, "inputs", [s.strip() for s in form.inputs if s.strip()])
    _set(table, "outputs", [s.strip() for s in form.outputs if s.strip()])
    _set(table, "after", [s.strip() for s in form.after if s.strip()])
    _set(table, "phony", form.phony)
    _set(table, "retries", int(form.retries) if form.retries.strip() else None)
    _set(table, "timeout", form.timeout.strip())
    res: dict[str, object] = {}
    if form.cpu.strip():
        res["cpu"] = _number(form.cpu.strip())
    if form.mem.strip():
        res["mem"] = form.mem.strip()
    if form.gpu.strip():
        res["gpu"] = parse_gpu(form.gpu.strip())
    if form.gpu_mem.strip():
        res["gpu_mem"] = form.gpu_mem.strip()
    old = table.get("resources")
    if old is not None:
        # Keep keys the form does not show (pools) and the user's own spelling.
        plain = old.unwrap() if hasattr(old, "unwrap") else dict(old)
        for k in ("cpu", "mem", "gpu", "gpu_mem"):
            if k not in res and k in old:
                del old[k]
        for k, v in res.items():
            if plain.get(k) != v:
                old[k] = v
        if not old.unwrap():
            del table["resources"]
    elif res:
        inline = tomlkit.inline_table()
        inline.update(res)
        table["resources"] = inline


def write_task(path: str | Path, form: TaskForm, original: str | None = None) -> None:
    """Add the task ``form.name`` (or change ``original``) in the file at ``path``."""
    path = Path(path)
    doc = tomlkit.parse(path.read_text(encoding="utf-8"))
    tasks = doc.get("tasks")
    if tasks is None:
        tasks = tomlkit.table(is_super_table=True)
        doc["tasks"] = tasks
    name = form.name.strip()
    if original and original in tasks:
        table = tasks[original]
        if original != name:
            del tasks[original]
            tasks[name] = table
    else:
        table = tomlkit.table()
        tasks[name] = table
    _apply(table, form)
    _save(path, doc)


def _save(path: Path, doc) -> None:
    """Write ``doc`` over ``path`` at once (a new file renamed over it, mode kept)."""
    text = tomlkit.dumps(doc)
    tmp = path.with_name(path.name + ".gristmill-tmp")
    tmp.write_text(text, encoding="utf-8")
    os.chmod(tmp, path.stat().st_mode & 0o7777)
    os.replace(tmp, path)


def edit_list(path: str | Path, name: str, key: str, add: str | None = None,
              remove: str | None = None) -> bool:
    """Add ``add`` to (or take ``remove`` out of) the list ``key`` of ``[tasks.NAME]``,
    keeping the file's comments and layout; False when there was nothing to change.
    A string value (``inputs = "a.txt"``) becomes a list when it gains a second path."""
    path = Path(path)
    doc = tomlkit.parse(path.read_text(encoding="utf-8"))
    table = doc.get("tasks", {}).get(name)
    if table is None:
        raise KeyError(name)
    old = table.get(key)
    values = _strings(old.unwrap() if hasattr(old, "unwrap") else old)
    if add is not None:
        if add in values:
            return False
        if isinstance(old, list):       # a tomlkit array: appended in place, comments kept
            old.append(add)
        else:
            _set(table, key, values + [add])
    if remove is not None:
        if remove not in values:
            return False
        if isinstance(old, list):
            del old[values.index(remove)]
            if not values[1:] and key in table:
                del table[key]
        else:
            del table[key]
    _save(path, doc)
    return True
