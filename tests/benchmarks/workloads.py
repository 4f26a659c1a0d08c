"""Writers of the benchmark workloads: the same work for every tool, one folder per tool.

Each ``write_*`` function fills a folder with the files every tool needs
(sources, a helper script) and the one workflow file of the tool asked for:
``gristmill.toml``, ``Makefile``, ``build.ninja``, ``Snakefile`` or ``dodo.py``.
Nothing here runs a tool; ``run.py`` does.

Sizes are parameters so ``--quick`` can shrink them; the defaults are the
issue's (2,000 spawns, 20,000 copies, 100,000 tasks, 40 packed tasks).
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from pathlib import Path

from gristmill.core.decide.capacity import detect_memory

TOOLS = ("gristmill", "make", "ninja", "snakemake", "doit")


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _fill_sources(folder: Path, names: list[str]) -> None:
    """One small file per name under ``folder`` (kept if already there)."""
    folder.mkdir(parents=True, exist_ok=True)
    have = set(os.listdir(folder))
    for n in names:
        if n not in have:
            with open(folder / n, "w") as f:
                f.write(n + "\n")


def _toml_str(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


# -- 1. spawn: N independent trivial tasks --------------------------------------------

def spawn_names(n: int) -> list[str]:
    return [f"t{i:05d}" for i in range(n)]


def write_spawn(folder: Path, tool: str, n: int) -> None:
    """``n`` independent tasks, each ``touch out/NAME`` (so every tool has an output to
    check); the runner empties ``out/`` before each timed run, so all of them run."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "out").mkdir(exist_ok=True)
    names = spawn_names(n)
    if tool == "gristmill":
        parts = ['[workflow]\nname = "spawn"\n']
        for t in names:
            parts.append(f'[tasks.{t}]\ncmd = "touch out/{t}"\noutputs = ["out/{t}"]\n')
        _write(folder / "gristmill.toml", "\n".join(parts))
    elif tool == "make":
        outs = " ".join(f"out/{t}" for t in names)
        _write(folder / "Makefile",
               f"OUTS := {outs}\n\nall: $(OUTS)\n\nout/%:\n\ttouch $@\n\n.PHONY: all\n")
    elif tool == "ninja":
        lines = ["rule touch", "  command = touch $out", ""]
        lines += [f"build out/{t}: touch" for t in names]
        _write(folder / "build.ninja", "\n".join(lines) + "\n")
    elif tool == "snakemake":
        _write(folder / "Snakefile",
               f'NAMES = ["t{{:05d}}".format(i) for i in range({n})]\n\n'
               'rule all:\n    input: expand("out/{name}", name=NAMES)\n\n'
               'rule touch:\n    output: "out/{name}"\n    shell: "touch {output}"\n')
    elif tool == "doit":
        _write(folder / "dodo.py",

               "def task_touch():\n"
               f"    for i in range({n}):\n"
               "        t = 't{:05d}'.format(i)\n"
               "        yield {'name': t, 'actions': ['touch out/' + t], 'targets': ['out/' + t]}\n")
    else:
        raise ValueError(tool)


# -- 2 and 3. copy N sources to outputs (no-op and one change) -------------------------

def copy_names(n: int) -> list[str]:
    return [f"f{i:05d}.txt" for i in range(n)]


def write_copy(folder: Path, tool: str, n: int) -> None:
    """``n`` tasks ``cp src/X out/X``, written the way a user of each tool would write them:
    one fan-out in gristmill.toml, a pattern rule in the Makefile, one build statement each
    in build.ninja (ninja has no patterns), a wildcard rule in the Snakefile, a task
    generator in dodo.py."""
    names = copy_names(n)
    _fill_sources(folder / "src", names)
    (folder / "out").mkdir(exist_ok=True)
    if tool == "gristmill":
        _write(folder / "gristmill.toml",
               '[workflow]\nname = "copy"\n\n'
               '[tasks.copy]\nforeach = "src/*.txt"\ncmd = "cp {input} {output}"\n'
               'inputs = ["{item}"]\noutputs = ["out/{name}"]\n')
    elif tool == "make":
        _write(folder / "Makefile",
               "SRCS := $(wildcard src/*.txt)\nOUTS := $(SRCS:src/%=out/%)\n\n"
               "all: $(OUTS)\n\nout/%.txt: src/%.txt\n\tcp $< $@\n\n.PHONY: all\n")
    elif tool == "ninja":
        lines = ["rule cp", "  command = cp $in $out", ""]
        lines += [f"build out/{x}: cp src/{x}" for x in names]
        _write(folder / "build.ninja", "\n".join(lines) + "\n")
    elif tool == "snakemake":
        _write(folder / "Snakefile",
               'IDS, = glob_wildcards("src/{id}.txt")\n\n'
               'rule all:\n    input: expand("out/{id}.txt", id=IDS)\n\n'
               'rule copy:\n    input: "src/{id}.txt"\n    output: "out/{id}.txt"\n'
               '    shell: "cp {input} {output}"\n')
    elif tool == "doit":
        _write(folder / "dodo.py",
               "import os\n\n"
               "def task_copy():\n"
               "    for x in sorted(os.listdir('src')):\n"
               "        yield {'name': x, 'actions': ['cp src/%s out/%s' % (x, x)],\n"
               "               'file_dep': ['src/' + x], 'targets': ['out/' + x]}\n")
    else:
        raise ValueError(tool)


# -- 4. scale: fan-out, fan-out, fan-in, fan-in ----------------------------------------

@dataclass(frozen=True)
class ScaleShape:
    groups: int = 50
    per_group: int = 1000

    @property
    def sources(self) -> int:
        return self.groups * self.per_group

    @property
    def tasks(self) -> int:
        # a (one per source), b (one per source), c (one per group), report
        return 2 * self.sources + self.groups + 1


def scale_names(shape: ScaleShape) -> list[str]:
    return [f"{g:03d}_{i:04d}.txt" for g in range(shape.groups) for i in range(shape.per_group)]


def write_scale(folder: Path, tool: str, shape: ScaleShape) -> None:
    """src/G_I.txt -> a/G_I.txt -> b/G_I.txt (two fan-outs), b/G_*.txt -> c/G.txt
    (a fan-in per group), c/*.txt -> report.txt. ``shape.tasks`` tasks in all."""
    names = scale_names(shape)
    _fill_sources(folder / "src", names)
    groups = [f"{g:03d}" for g in range(shape.groups)]
    if tool == "gristmill":
        parts = ['[workflow]\nname = "scale"\ndefault = ["report"]\n',
                 '[tasks.a]\nforeach = "src/*.txt"\ncmd = "cp {input} {output}"\n'
                 'inputs = ["{item}"]\noutputs = ["a/{name}"]\n',
                 '[tasks.b]\nforeach = "src/*.txt"\ncmd = "cp {input} {output}"\n'
                 'inputs = ["a/{name}"]\noutputs = ["b/{name}"]\n']
        for g in groups:
            parts.append(f'[tasks.c{g}]\ncmd = "cat {{inputs}} > {{output}}"\n'
                         f'inputs = ["b/{g}_*.txt"]\noutputs = ["c/{g}.txt"]\n')
        parts.append('[tasks.report]\ncmd = "cat {inputs} > {output}"\n'
                     'inputs = ["c/*.txt"]\noutputs = ["report.txt"]\n')
        _write(folder / "gristmill.toml", "\n".join(parts))
    elif tool == "make":
        lines = ["SRCS := $(wildcard src/*.txt)", "A := $(SRCS:src/%=a/%)",
                 "B := $(SRCS:src/%=b/%)", "",
                 "all: report.txt", ".PHONY: all", "",
                 "a/%.txt: src/%.txt", "\t@mkdir -p a && cp $< $@", "",
                 "b/%.txt: a/%.txt", "\t@mkdir -p b && cp $< $@", ""]
        for g in groups:
            lines.append(f"c/{g}.txt: $(filter b/{g}_%,$(B))")
        lines += ["", "c/%.txt:", "\t@mkdir -p c && cat $^ > $@", "",
                  "report.txt: " + " ".join(f"c/{g}.txt" for g in groups),
                  "\tcat $^ > $@", ""]
        _write(folder / "Makefile", "\n".join(lines))
    elif tool == "ninja":
        lines = ["rule cp", "  command = cp $in $out", "rule cat", "  command = cat $in > $out", ""]
        lines += [f"build a/{x}: cp src/{x}" for x in names]
        lines += [f"build b/{x}: cp a/{x}" for x in names]
        per = shape.per_group
        for k, g in enumerate(groups):
            ins = " ".join(f"b/{x}" for x in names[k * per:(k + 1) * per])
            lines.append(f"build c/{g}.txt: cat {ins}")
        lines.append("build report.txt: cat " + " ".join(f"c/{g}.txt" for g in groups))
        lines.append("default report.txt")
        _write(folder / "build.ninja", "\n".join(lines) + "\n")
    elif tool == "snakemake":
        _write(folder / "Snakefile",
               'G, I = glob_wildcards("src/{g}_{i}.txt")\n'
               'GROUPS = sorted(set(G))\n'
               'BY_GROUP = {}\n'
               'for g, i in zip(G, I):\n'
               '    BY_GROUP.setdefault(g, []).append(i)\n\n'
               'rule report:\n    input: expand("c/{g}.txt", g=GROUPS)\n'
               '    output: "report.txt"\n    shell: "cat {input} > {output}"\n\n'
               'rule c:\n    input: lambda wc: expand("b/{g}_{i}.txt", g=wc.g, i=BY_GROUP[wc.g])\n'
               '    output: "c/{g}.txt"\n    shell: "cat {input} > {output}"\n\n'
               'rule b:\n    input: "a/{x}.txt"\n    output: "b/{x}.txt"\n    shell: "cp {input} {output}"\n\n'
               'rule a:\n    input: "src/{x}.txt"\n    output: "a/{x}.txt"\n    shell: "cp {input} {output}"\n')
    elif tool == "doit":
        _write(folder / "dodo.py",
               "import os\n\nDOIT_CONFIG = {'default_tasks': ['report']}\n"
               "SRCS = sorted(os.listdir('src'))\n"
               "GROUPS = sorted({x.split('_')[0] for x in SRCS})\n\n"
               "def task_a():\n    for x in SRCS:\n"
               "        yield {'name': x, 'actions': ['cp src/%s a/%s' % (x, x)],\n"
               "               'file_dep': ['src/' + x], 'targets': ['a/' + x]}\n\n"
               "def task_b():\n    for x in SRCS:\n"
               "        yield {'name': x, 'actions': ['cp a/%s b/%s' % (x, x)],\n"
               "               'file_dep': ['a/' + x], 'targets': ['b/' + x]}\n\n"
               "def task_c():\n    for g in GROUPS:\n"
               "        ins = ['b/' + x for x in SRCS if x.startswith(g + '_')]\n"
               "        yield {'name': g, 'actions': ['cat %s > c/%s.txt' % (' '.join(ins), g)],\n"
               "               'file_dep': ins, 'targets': ['c/%s.txt' % g]}\n\n"
               "def task_report():\n"
               "    ins = ['c/%s.txt' % g for g in GROUPS]\n"
               "    return {'actions': ['cat %s > report.txt' % ' '.join(ins)],\n"
               "            'file_dep': ins, 'targets': ['report.txt']}\n")
    else:
        raise ValueError(tool)


# -- 5. packing: mixed lengths, some tasks need 40% of memory ---------------------------

@dataclass(frozen=True)
class PackTask:
    name: str
    seconds: float
    mem: int              # bytes
    after: tuple[str, ...] = ()


@dataclass(frozen=True)
class PackShape:
    cpu: int              # slots (every task takes 1 cpu)
    mem: int              # bytes: the machine's memory
    tasks: tuple[PackTask, ...]

    def lower_bound(self) -> dict[str, float]:
        """max(critical path, total work / capacity), capacity taken per dimension."""
        finish: dict[str, float] = {}
        for t in self.tasks:          # declared dependencies-first
            finish[t.name] = t.seconds + max((finish[a] for a in t.after), default=0.0)
        cp = max(finish.values())
        cpu_work = sum(t.seconds for t in self.tasks) / self.cpu
        mem_work = sum(t.seconds * t.mem for t in self.tasks) / self.mem
        return {"critical_path": cp, "cpu_work": cpu_work, "mem_work": mem_work,
                "bound": max(cp, cpu_work, mem_work)}


def machine_memory() -> int:
    """The memory Gristmill detects, so every tool's workload is sized the same way."""
    return detect_memory()


def pack_shape(scale: float = 1.0, n: int = 40, seed: int = 6) -> PackShape:
    """``n`` tasks: ten need 40% of the machine's memory (declared three in a row, as a
    user lists them), the rest 2%; lengths 0.2-1.6 s (times ``scale``); one chain of
    four tasks gives a critical path."""
    rnd = random.Random(seed)
    mem = machine_memory()
    big, small = int(mem * 0.40), int(mem * 0.02)
    tasks: list[PackTask] = []
    for i in range(n):
        is_big = i % 10 in (1, 2, 3) and i < 32     # runs of three: naive -j4 oversubscribes
        secs = round(rnd.uniform(0.6, 1.6) if is_big else rnd.uniform(0.2, 1.0), 2) * scale
        after = (f"p{i - 5:02d}",) if i in (5, 10, 15) else ()   # chain p00 -> p05 -> p10 -> p15
        tasks.append(PackTask(f"p{i:02d}", round(secs, 3), big if is_big else small, after))
    return PackShape(cpu=4, mem=mem, tasks=tuple(tasks))


TASK_SH = """#!/bin/sh
# task.sh NAME SECONDS MEM_BYTES: record when it ran, sleep, make its output.
s=$(date +%s.%N)
sleep "$2"
e=$(date +%s.%N)
echo "$1 $s $e $3" >> timeline.txt
: > "out/$1"
"""


def write_pack(folder: Path, tool: str, shape: PackShape) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "out").mkdir(exist_ok=True)
    _write(folder / "task.sh", TASK_SH)
    big = max(t.mem for t in shape.tasks)
    if tool == "gristmill":
        parts = ['[workflow]\nname = "pack"\n', f"[capacity]\ncpu = {shape.cpu}\n"]
        for t in shape.tasks:
            after = ", ".join(_toml_str(a) for a in t.after)
            parts.append(f"[tasks.{t.name}]\ncmd = \"sh task.sh {t.name} {t.seconds} {t.mem}\"\n"
                         f'outputs = ["out/{t.name}"]\n' + (f"after = [{after}]\n" if after else "")
                         + f'resources = {{ cpu = 1, mem = "{t.mem}B" }}\n')
        _write(folder / "gristmill.toml", "\n".join(parts))
    elif tool == "make":
        lines = ["all: " + " ".join(f"out/{t.name}" for t in shape.tasks), ".PHONY: all", ""]
        for t in shape.tasks:
            deps = " ".join(f"out/{a}" for a in t.after)
            lines += [f"out/{t.name}: {deps}".rstrip(), f"\tsh task.sh {t.name} {t.seconds} {t.mem}", ""]
        _write(folder / "Makefile", "\n".join(lines))
    elif tool == "ninja":
        depth = shape.mem // big
        lines = [f"pool bigmem\n  depth = {depth}", "",
                 "rule task", "  command = sh task.sh $name $secs $mem", "",
                 "rule bigtask", "  command = sh task.sh $name $secs $mem", "  pool = bigmem", ""]
        for t in shape.tasks:
            rule = "bigtask" if t.mem == big else "task"
            deps = (" || " + " ".join(f"out/{a}" for a in t.after)) if t.after else ""
            lines += [f"build out/{t.name}: {rule}{deps}", f"  name = {t.name}",
                      f"  secs = {t.seconds}", f"  mem = {t.mem}"]
        _write(folder / "build.ninja", "\n".join(lines) + "\n")
    elif tool == "snakemake":
        spec = {t.name: (t.seconds, t.mem, list(t.after)) for t in shape.tasks}
        _write(folder / "Snakefile",
               f"SPEC = {spec!r}\n\n"
               'rule all:\n    input: expand("out/{name}", name=list(SPEC))\n\n'
               "rule task:\n"
               '    input: lambda wc: ["out/" + a for a in SPEC[wc.name][2]]\n'
               '    output: "out/{name}"\n'
               "    params: secs=lambda wc: SPEC[wc.name][0], mem=lambda wc: SPEC[wc.name][1]\n"
               "    resources: mem_mb=lambda wc: SPEC[wc.name][1] // 1000000\n"
               '    shell: "sh task.sh {wildcards.name} {params.secs} {params.mem}"\n')
    elif tool == "doit":
        spec = {t.name: (t.seconds, t.mem, list(t.after)) for t in shape.tasks}
        _write(folder / "dodo.py",
               f"SPEC = {spec!r}\n\n"
               "def task_pack():\n"
               "    for name, (secs, mem, after) in SPEC.items():\n"
               "        yield {'name': name, 'actions': ['sh task.sh %s %s %s' % (name, secs, mem)],\n"
               "               'targets': ['out/' + name],\n"
               "               'task_dep': ['pack:' + a for a in after]}\n")
    else:
        raise ValueError(tool)


def read_timeline(path: Path) -> list[tuple[str, float, float, int]]:
    """(name, start, end, mem) per task from the lines task.sh appended."""
    rows = []
    if not path.exists():
        return rows
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) == 4:
            rows.append((parts[0], float(parts[1]), float(parts[2]), int(parts[3])))
    return rows


def peak_concurrent_mem(rows: list[tuple[str, float, float, int]]) -> int:
    """The most memory declared by tasks running at one time (an end before a start at
    the same instant)."""
    points = sorted([(s, 1, m) for _, s, _, m in rows] + [(e, 0, m) for _, _, e, m in rows])
    cur = peak = 0
    for _, kind, m in points:
        cur += m if kind else -m
        peak = max(peak, cur)
    return peak
