"""Real runs on a machine of fake GPUs: the tasks write down what they saw, and when.

Each task prints its CUDA_VISIBLE_DEVICES (and NVIDIA_VISIBLE_DEVICES) into a file and
its own start and end times (from its own clock), so these tests check what the
processes really got, not what the engine says it gave them.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from gristmill import cli
from gristmill.core.events import EventBus, RunStatus, TaskFinished, TaskStarted
from gristmill.core.load.loader import load_workflow
from gristmill.core.record.history import History
from gristmill.core.run.engine import Engine, RunOptions

from fake_gpu import FakeSmi, gpu, uuid

MIB = 1024 ** 2

# Writes what the task saw, stamps its start and end, and waits (for the others of a
# barrier, when BARRIER names how many must be on at once) so that they overlap.
TASK = ('date +%s%N > t/{n}.start; echo "$CUDA_VISIBLE_DEVICES" > t/{n}.dev; '
        'echo "$NVIDIA_VISIBLE_DEVICES" > t/{n}.nv; touch t/{n}.on; {wait}'
        'date +%s%N > t/{n}.end')
BARRIER = 'while [ "$(ls t | grep -c "\\.on$")" -lt {k} ]; do sleep 0.02; done; '


@pytest.fixture
def machine(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.delenv("NVIDIA_VISIBLE_DEVICES", raising=False)

    def make(gpus):
        fake = FakeSmi(tmp_path / "smi", gpus)
        monkeypatch.setenv("PATH", fake.path())
        return fake
    return make


def project(folder: Path, tasks: dict[str, str], k: int = 0) -> Path:
    """A workflow of phony tasks, NAME -> its resources (inline table body)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "t").mkdir()
    text = f"[workflow]\ndefault = {json.dumps(list(tasks))}\n"
    text += "[capacity]\ncpu = 64\nmem = \"64GB\"\n"
    wait = BARRIER.format(k=k) if k else "sleep 0.2; "
    for name, resources in tasks.items():
        cmd = TASK.format(n=name, wait=wait)
        text += f"[tasks.{name}]\nphony = true\ncmd = '''{cmd}'''\n"
        text += f"resources = {{ cpu = 0.1, {resources} }}\n" if resources else \
            "resources = { cpu = 0.1 }\n"
    (folder / "gristmill.toml").write_text(text)
    return folder


def run(folder: Path, history: History | None = None):
    wf = load_workflow(folder)
    events = []
    bus = EventBus()
    bus.subscribe(events.append)
    result = Engine(wf, bus=bus, history=history, options=RunOptions()).run([])
    return result, events


def seen(folder: Path, name: str, what: str = "dev") -> str:
    return (folder / "t" / f"{name}.{what}").read_text().strip()


def interval(folder: Path, name: str) -> tuple[int, int]:
    return int(seen(folder, name, "start")), int(seen(folder, name, "end"))


def started(events) -> dict[str, TaskStarted]:
    return {e.task: e for e in events if isinstance(e, TaskStarted)}


def test_whole_gpu_tasks_get_the_users_devices_and_never_overlap_on_one(tmp_path, machine,
                                                                         monkeypatch):
    machine([gpu(i) for i in range(8)])
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,5,7")      # Gristmill may use these three
    names = [f"g{i}" for i in range(6)]
    folder = project(tmp_path / "w", {**{n: "gpu = 1" for n in names}, "pair": "gpu = 2",
                                      "cpu": ""})
    result, events = run(folder)
    assert result.status is RunStatus.SUCCEEDED
    by = started(events)
    for n in names + ["pair"]:
        words = seen(folder, n).split(",")
        assert words == [d.word for d in by[n].devices]       # exactly what it was handed
        assert set(words) <= {"2", "5", "7"}                  # never another person's card
        assert seen(folder, n, "nv") == seen(folder, n)
        assert [d.uuid for d in by[n].devices] == [uuid(int(w)) for w in words]
    assert len(set(seen(folder, "pair").split(","))) == 2
    # No two tasks holding a whole device ran on it at the same time (their own clocks).
    users = names + ["pair"]
    for a in users:
        for b in users:
            if a < b and set(seen(folder, a).split(",")) & set(seen(folder, b).split(",")):
                (s1, e1), (s2, e2) = interval(folder, a), interval(folder, b)
                assert e1 <= s2 or e2 <= s1, f"{a} and {b} shared a GPU"
    assert seen(folder, "cpu") == "" and seen(folder, "cpu", "nv") == ""  # it sees no GPU


def test_a_restriction_by_uuid_is_handed_on_by_uuid(tmp_path, machine, monkeypatch):
    machine([gpu(i) for i in range(4)])
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", f"{uuid(3)},{uuid(1)}")
    folder = project(tmp_path / "w", {"a": "gpu = 1", "b": "gpu = 1"}, k=2)
    result, _ = run(folder)
    assert result.status is RunStatus.SUCCEEDED
    assert {seen(folder, "a"), seen(folder, "b")} == {uuid(3), uuid(1)}


def test_quarter_shares_run_four_to_a_card_at_once(tmp_path, machine):
    machine([gpu(0), gpu(1)])
    names = [f"s{i}" for i in range(8)]
    # All eight are on at once (the barrier), so each card holds four at that moment.
    folder = project(tmp_path / "w", {n: "gpu = 0.25" for n in names}, k=8)
    result, events = run(folder)
    assert result.status is RunStatus.SUCCEEDED
    devices = [seen(folder, n) for n in names]
    assert sorted(devices) == ["0"] * 4 + ["1"] * 4
    assert all(started(events)[n].devices[0].word == seen(folder, n) for n in names)


def test_shares_pack_onto_one_card_and_leave_the_other_whole(tmp_path, machine):
    machine([gpu(0), gpu(1)])
    folder = project(tmp_path / "w", {"s1": "gpu = 0.5", "s2": "gpu = 0.5", "big": "gpu = 1"},
                     k=3)
    result, _ = run(folder)
    assert result.status is RunStatus.SUCCEEDED
    assert seen(folder, "s1") == seen(folder, "s2") != seen(folder, "big")


def test_gpu_mem_packs_jobs_by_declared_memory(tmp_path, machine):
    machine([gpu(0, total_mib=81559), gpu(1, total_mib=81559)])    # 85.5 GB each
    names = [f"m{i}" for i in range(4)]
    folder = project(tmp_path / "w", {n: 'gpu_mem = "40GB"' for n in names}, k=4)
    result, _ = run(folder)
    assert result.status is RunStatus.SUCCEEDED
    assert sorted(seen(folder, n) for n in names) == ["0", "0", "1", "1"]


def test_mig_instances_are_handed_out_by_uuid(tmp_path, machine):
    from fake_gpu import mig_uuid
    machine([gpu(0, mig=[{"profile": "3g.40gb", "uuid": mig_uuid(0, 0)},
                         {"profile": "3g.40gb", "uuid": mig_uuid(0, 1)}])])
    folder = project(tmp_path / "w", {"a": "gpu = 1", "b": "gpu = 1"}, k=2)
    result, _ = run(folder)
    assert result.status is RunStatus.SUCCEEDED
    assert {seen(folder, "a"), seen(folder, "b")} == {mig_uuid(0, 0), mig_uuid(0, 1)}


# Each task says its shell uses 1500 MiB of its device, then waits until the sampler has
# read that twice more (a sample that began after the line was written, and one after
# that sample was counted), so the figures are in before it ends.
SAMPLED = ('n=$(cat {calls} 2>/dev/null | wc -l); echo "$$, $(cat t/{name}.uuid), 1500" '
           '>> {apps}; while [ "$(cat {calls} 2>/dev/null | wc -l)" -lt $((n + 3)) ]; '
           'do sleep 0.05; done')


def test_devices_peak_gpu_memory_and_utilisation_are_in_history(tmp_path, machine, monkeypatch):
    fake = machine([gpu(0, util=40), gpu(1, util=70)])
    folder = tmp_path / "w"
    (folder / "t").mkdir(parents=True)
    text = "[workflow]\ndefault = [\"a\", \"b\"]\n[capacity]\ncpu = 4\nmem = \"4GB\"\n"
    for name in ("a", "b"):
        cmd = SAMPLED.format(calls=fake.app_calls, apps=fake.apps, name=name)
        text += (f"[tasks.{name}]\nphony = true\ncmd = ['''{cmd}''']\n"
                 "resources = { cpu = 0.1, gpu = 1 }\n")
    (folder / "gristmill.toml").write_text(text)
    wf = load_workflow(folder)
    # The device each says its memory is on: a's is the one it gets, b's is not.
    (folder / "t" / "a.uuid").write_text(uuid(0))
    (folder / "t" / "b.uuid").write_text(uuid(1))
    history = History(tmp_path / "history.db")
    try:
        events = []
        bus = EventBus()
        bus.subscribe(events.append)
        result = Engine(wf, bus=bus, history=history, options=RunOptions(jobs=1)).run([])
        assert result.status is RunStatus.SUCCEEDED
        by = started(events)
        # -j 1: a ran first, on device 0; then b, on device 0 again (the lowest free).
        assert by["a"].devices[0].uuid == by["b"].devices[0].uuid == uuid(0)
        history.flush()
        attempts = {a.task: a for a in history.attempts(result.run_id)}
    finally:
        history.close()
    a = attempts["a"]
    assert [(g["index"], g["uuid"]) for g in a.gpus] == [(0, uuid(0))]
    assert a.gpus_text == f"0 {uuid(0)}"
    assert a.gpu_peak_mem == 1500 * MIB
    assert a.gpu_util == 40.0
    # A past run's timeline draws each attempt in its GPU's row too.
    from gristmill.app.models.history import bars_from_attempts
    assert {b.task: b.devices for b in bars_from_attempts(list(attempts.values()))} == \
        {"a": ("GPU 0",), "b": ("GPU 0",)}
    # b wrote device 1's UUID, where it did not run: nothing of it is on its device 0.
    assert attempts["b"].gpu_peak_mem == 0
    finished = {e.task: e for e in events if isinstance(e, TaskFinished)}
    assert finished["a"].gpu_peak_mem == 1500 * MIB
    # The app's Explain says it in a line, from the same events.
    from gristmill.app.explain import explain
    from gristmill.app.runstate import RunState
    from gristmill.core.decide.graph import TaskGraph
    state = RunState()
    state.apply(events)
    sections = dict(explain(wf, TaskGraph.of(wf), result.decisions, "a", state.tasks["a"]))
    assert sections["In the current run"].splitlines()[-1] == (
        f"GPUs: 0 {uuid(0)} (NVIDIA H100 80GB HBM3, 85.5 GB); peak 1.6 GB, 40% busy")


def test_a_history_without_the_gpu_columns_gets_them_and_keeps_its_runs(tmp_path):
    import sqlite3
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE runs (id TEXT PRIMARY KEY, workflow_path TEXT NOT NULL, "
                 "workflow_name TEXT NOT NULL DEFAULT '', targets TEXT NOT NULL DEFAULT '[]', "
                 "task_count INTEGER NOT NULL DEFAULT 0, started REAL NOT NULL, ended REAL, "
                 "status TEXT NOT NULL, counts TEXT NOT NULL DEFAULT '{}', pid INTEGER, "
                 "hostname TEXT NOT NULL DEFAULT '', process_start TEXT, "
                 "log_path TEXT NOT NULL DEFAULT '')")
    conn.execute("CREATE TABLE attempts (run_id TEXT NOT NULL, task TEXT NOT NULL, "
                 "attempt INTEGER NOT NULL, started REAL, ended REAL, duration REAL, "
                 "outcome TEXT, exit_code INTEGER, peak_mem INTEGER, slot INTEGER, "
                 "command TEXT NOT NULL DEFAULT '', definition_hash TEXT NOT NULL DEFAULT '', "
                 "reasons TEXT NOT NULL DEFAULT '[]', log_path TEXT NOT NULL DEFAULT '', "
                 "message TEXT NOT NULL DEFAULT '', PRIMARY KEY (run_id, task, attempt))")
    conn.execute("INSERT INTO runs (id, workflow_path, started, ended, status) "
                 "VALUES ('r1', '/w/gristmill.toml', 1, 2, 'succeeded')")
    conn.execute("INSERT INTO attempts (run_id, task, attempt, started, ended, duration, "
                 "outcome, exit_code) VALUES ('r1', 'a', 1, 1, 2, 1, 'succeeded', 0)")
    conn.execute("PRAGMA user_version = 1")
    conn.commit()
    conn.close()
    history = History(path)
    try:
        [a] = history.attempts("r1")
        assert (a.task, a.gpus, a.gpu_peak_mem, a.gpu_util) == ("a", (), None, None)
    finally:
        history.close()
    columns = {row[1] for row in sqlite3.connect(path).execute("PRAGMA table_info(attempts)")}
    assert {"gpus", "gpu_peak_mem", "gpu_util"} <= columns
    from gristmill.core.record.store import SCHEMA_VERSION
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


# -- the CLI: errors before the run, and the plan -------------------------------------------

def test_a_task_no_gpu_can_hold_is_an_error_at_the_task_before_anything_runs(tmp_path, machine,
                                                                              capsys):
    machine([gpu(0, total_mib=81559)])
    folder = tmp_path / "w"
    folder.mkdir()
    (folder / "gristmill.toml").write_text(
        '[tasks.ok]\ncmd = "touch ran"\nphony = true\n'
        '[tasks.big]\ncmd = "true"\nphony = true\nresources = { gpu_mem = "200GB" }\n')
    assert cli.main(["run", "-C", str(folder), "ok", "big"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == (f"{folder / 'gristmill.toml'}:4:1: task 'big' asks for gpu_mem = "
                           "200.0 GB, but no GPU has that much memory (the largest has 85.5 GB)")
    assert not (folder / "ran").exists()
    (folder / "gristmill.toml").write_text(
        '[tasks.two]\ncmd = "true"\nphony = true\nresources = { gpu = 2 }\n')
    assert cli.main(["plan", "-C", str(folder), "two"]) == 2
    assert capsys.readouterr().err.strip() == (
        f"{folder / 'gristmill.toml'}:1:1: task 'two' asks for gpu = 2, but the machine has 1 GPU")


def test_no_gpu_at_all_is_an_error_for_a_share_and_fine_for_the_rest(tmp_path, monkeypatch,
                                                                     capsys):
    monkeypatch.setitem(sys.modules, "pynvml", None)
    monkeypatch.setenv("PATH", "/usr/bin:/bin")               # no nvidia-smi
    folder = tmp_path / "w"
    folder.mkdir()
    (folder / "gristmill.toml").write_text(
        '[tasks.s]\ncmd = "true"\nphony = true\nresources = { gpu = 0.25 }\n')
    assert cli.main(["run", "-C", str(folder), "s"]) == 2
    assert capsys.readouterr().err.strip() == (
        f"{folder / 'gristmill.toml'}:1:1: task 's' asks for gpu = 0.25, but the machine has "
        "no GPU")


def test_plan_json_names_the_devices_and_each_tasks_request(tmp_path, machine, monkeypatch,
                                                           capsys):
    machine([gpu(i) for i in range(4)])
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", f"1,{uuid(3)}")
    folder = tmp_path / "w"
    folder.mkdir()
    (folder / "gristmill.toml").write_text(
        '[tasks.s]\ncmd = "true"\nphony = true\nresources = { gpu = 0.5, gpu_mem = "8GB" }\n'
        '[tasks.c]\ncmd = "true"\nphony = true\n')
    assert cli.main(["plan", "--json", "-C", str(folder), "s", "c"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert [(g["index"], g["uuid"], g["visible_as"]) for g in plan["gpus"]] == \
        [(1, uuid(1), "1"), (3, uuid(3), uuid(3))]
    tasks = {t["name"]: t for t in plan["tasks"]}
    assert (tasks["s"]["gpu"], tasks["s"]["gpu_mem"]) == (0.5, 8 * 1000 ** 3)
    assert "gpu" not in tasks["c"]


def test_edit_task_writes_gpu_mem_with_its_unit_and_the_workflow_reads_it(qtbot, tmp_path):
    from gristmill.app.dialogs.task_editor import TaskEditorDialog
    from gristmill.core.load.loader import load_workflow
    toml = tmp_path / "gristmill.toml"
    toml.write_text('# mine\n[tasks.train]\ncmd = "python train.py"  # the step\n'
                    'resources = { gpu = 0.5 }\n')
    dialog = TaskEditorDialog(toml, "train")
    qtbot.addWidget(dialog)
    assert dialog.edits["gpu"].text() == "0.5" and dialog.edits["gpu_mem"].text() == ""
    dialog.edits["gpu_mem"].setText("20")              # a bare number: refused, with the units
    save = dialog.buttons.button(dialog.buttons.StandardButton.Save)
    assert not save.isEnabled() and "has no unit" in dialog.errors["gpu_mem"].text()
    dialog.edits["gpu_mem"].setText("20GB")
    assert save.isEnabled()
    assert dialog.save()
    text = toml.read_text()
    assert 'gpu_mem = "20GB"' in text and "# mine" in text and "# the step" in text
    r = load_workflow(toml).tasks["train"].resources
    assert r.gpu == 0.5 and r.gpu_mem == 20 * 1000 ** 3
    again = TaskEditorDialog(toml, "train")
    qtbot.addWidget(again)
    assert again.edits["gpu_mem"].text() == "20GB"
