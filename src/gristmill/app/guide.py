"""The user guide shown by Help > User Guide (kept in code so every install has it)."""

USER_GUIDE = """\
# Gristmill

Gristmill runs multi-step work — builds, data pipelines, experiment sweeps —
incrementally and in parallel, and shows you what is happening and why.

## Open a workflow

*File > Open Folder…* (Ctrl+O) opens a folder with a `gristmill.toml`, a
`gristmill.json` or a `Makefile`; *Open Workflow File…* (Ctrl+Shift+O) opens
one file. The window's title is the workflow's name. Recent workflows are on
the welcome view and in *File > Open Recent*; the bundled examples are on the
welcome view (each opens as a copy you can change).

Gristmill watches the workflow's files: save a change and it reloads. If the
file has a mistake, the message says where (`path:line:col`) and the last good
state stays on screen until you fix it. Warnings (for example an input glob
that matches nothing) appear in a yellow banner you can dismiss.

## See it

- **Tasks** (left): every task, its state, *why* it will or will not run, its
  last and expected duration, what it declares (cpu, memory, gpu) and the age
  of its outputs. Sort by any column; filter by name, state or reason.
- **Graph**: the tasks in layers, coloured by state. Wheel to zoom, drag to
  pan, *Fit* (Ctrl+0) to see it all. A big fan-out is one stacked node:
  double-click it to expand.
- **Board**: one column per state of the run — waiting, ready, running, done,
  failed, skipped, up to date. Cards move as the run goes. Tasks that are not
  in the run (before the first run, or a `clean` task after running the
  default targets) have no card: the table and the graph show them greyed,
  as *will run* (dashed in the graph) or *up to date*, with the reason.
- **Timeline**: one lane per running slot, bars coloured by outcome. Hover a
  bar for its times and exit code; Ctrl+wheel zooms.
- **Log** (bottom): the output of the selected task, or of the whole run.
  It follows the tail; type in *Find* and press Enter. A task that has not
  run in this session shows its latest recorded output, labelled with its
  run and attempt.

Selecting a task anywhere selects it everywhere.

## Run it

| Action | Key |
|---|---|
| Run the default targets | F5 |
| Run the selected tasks | Ctrl+F5 |
| Force-run the selected tasks | Ctrl+Shift+F5 |
| Plan: what would run, and why (runs nothing) | F6 |
| Watch: keep the default targets (or the selected tasks) up to date | F7 |
| Cancel the run | Shift+F5 |
| Explain the selected task | Ctrl+I |

The first time a folder would run commands, Gristmill asks whether you trust
it; nothing runs before you say yes (Enter trusts and runs, Esc declines).
Trusted folders are listed in *Edit > Preferences…*, where you can remove them.

*Run > Watch* (F7) runs the targets now, then again whenever a change on disk makes
one of them stale: only what the change touches runs, and a change to the inputs of a
running task restarts that task alone. Turning it off cancels what runs. Without
Watch the app still notices changes: a task the last run finished that a change made
stale shows as *Will run* everywhere.

*Run > Clean…* asks first, naming what it will do: it runs the workflow's own
`clean` task (showing its commands) if there is one; otherwise it removes the
files and folders the tasks declare as outputs. Inputs are never touched.

## Change it

*Edit > Edit Task…* (Ctrl+E) and *Add Task…* change `gristmill.toml` in a
form that checks what you type. Your comments and formatting are kept.

## Look back

*Tools > Run History…* (Ctrl+H) lists past runs with their outcome and
duration. Open one to see its timeline and logs.

## Preferences

Default parallelism, the capacity Gristmill may use (CPUs, memory, GPUs),
and how long to keep history. A workflow's own `[capacity]` takes precedence.
"""
