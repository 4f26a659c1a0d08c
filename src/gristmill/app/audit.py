"""The dependency audit's findings in words for the app: Explain's section and the rows
of the Audit Findings dialog. Pure Python."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Protocol

from gristmill.core.decide.audit import FileEdit, file_edit
from gristmill.core.findings import AuditFinding
from gristmill.core.workflow import Workflow

HEADING = "Dependency audit"


class Audit(Protocol):       # events.TaskAudited and store.AuditRecord both have these
    task: str
    attempt: int
    traced: bool
    findings: tuple[AuditFinding, ...]


def audit_section(audit: Audit | None, where: str = "") -> tuple[str, str] | None:
    """Explain's section for a task's latest audit (``where``: "in the current run", or
    of which past run), or None when it was never audited."""
    if audit is None:
        return None
    head = f"Attempt {audit.attempt}" + (f" {where}" if where else "") + ": "
    if not audit.traced:
        return HEADING, head + "not traced (the executor runs no strace)."
    if not audit.findings:
        return HEADING, head + ("traced; every file it read and wrote is declared, and it "
                                "read every declared input.")
    lines = [head + f"{len(audit.findings)} finding{'s' if len(audit.findings) != 1 else ''}."]
    for f in audit.findings:
        lines.append(f"• {f.message}")
        if f.fix:
            lines.append(f"    fix: {f.fix}" + (f"  ({f.where})" if f.where else ""))
    return HEADING, "\n".join(lines)


@dataclass(frozen=True)
class FindingRow:
    task: str
    finding: AuditFinding
    edit: FileEdit | None        # the gristmill.toml edit the app can make, if any


def finding_rows(workflow: Workflow | None, audits: Iterable[Audit]) -> list[FindingRow]:
    """One row per finding, with the edit the app can apply where the task is declared
    in a gristmill.toml (a Makefile's line and a JSON edit are shown, not applied)."""
    rows = []
    for a in audits:
        task = workflow.tasks.get(a.task) if workflow is not None else None
        for f in a.findings:
            edit = None
            if task is not None and workflow.kind == "toml" and task.location is not None \
                    and task.location.path.endswith(".toml"):
                edit = file_edit(workflow, task, f.kind, f.path)
            rows.append(FindingRow(a.task, f, edit))
    return rows
