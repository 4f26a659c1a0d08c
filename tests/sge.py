"""A real single-node Grid Engine for the tests: sge_qmaster and sge_execd on this machine.

Debian's ``gridengine-master``, ``gridengine-exec`` and ``gridengine-client`` (Son of
Grid Engine 8.1.9). ``start_sge()`` makes a cell of its own under ``SGE_ROOT``
(``gristmill-PID``: its own ports, spool and configuration, so it cannot clash with a
Grid Engine the machine runs), spools its defaults as the package's ``init_cluster``
does (but with ``min_uid 0``: the tests submit as root), starts the qmaster, adds this
host as an admin, submit and execution host with one queue of ``slots`` slots, starts
the execd and waits until ``qsub -sync y`` of ``true`` comes back. It returns the
environment a client needs and a ``stop()`` (both daemons told to stop, the cell
removed); or raises ``SgeUnavailable`` saying why, for the tests to skip with.
``.ci/run`` installs the packages.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Callable

from batch import BatchSystem, free_port, stopped_if_it_fails

SGE_ROOT = Path("/var/lib/gridengine")
DEFAULTS = Path("/usr/share/gridengine")
LIB = Path("/usr/lib/gridengine")
ADMIN = "sgeadmin"

QUEUE = """\
qname all.q
hostlist @allhosts
seq_no 0
load_thresholds NONE
suspend_thresholds NONE
nsuspend 1
suspend_interval 00:05:00
priority 0
min_cpu_interval 00:05:00
processors UNDEFINED
qtype BATCH INTERACTIVE
ckpt_list NONE
pe_list NONE
rerun FALSE
slots {slots}
tmpdir /tmp
shell /bin/sh
prolog NONE
epilog NONE
shell_start_mode posix_compliant
starter_method NONE
suspend_method NONE
resume_method NONE
terminate_method NONE
notify 00:00:60
owner_list NONE
user_lists NONE
xuser_lists NONE
subordinate_list NONE
complex_values NONE
projects NONE
xprojects NONE
calendar NONE
initial_state default
""" + "".join(f"{k} INFINITY\n" for k in (
    "s_rt", "h_rt", "s_cpu", "h_cpu", "s_fsize", "h_fsize", "s_data", "h_data", "s_stack",
    "h_stack", "s_core", "h_core", "s_rss", "h_rss", "s_vmem", "h_vmem"))

EXEC_HOST = "hostname {host}\n" + "".join(f"{k} NONE\n" for k in (
    "load_scaling", "complex_values", "user_lists", "xuser_lists", "projects", "xprojects",
    "usage_scaling", "report_variables"))


class SgeUnavailable(Exception):
    pass


class Sge(BatchSystem):
    def _jobs(self, states: str, name: str) -> list[str]:
        p = self.run("qstat", "-u", "*", "-s", states, "-xml")
        found = re.findall(r"<JB_job_number>(\d+)</JB_job_number>\s*<JAT_prio>[^<]*</JAT_prio>"
                           r"\s*<JB_name>([^<]*)</JB_name>", p.stdout)
        return [job for job, job_name in found if job_name == name]

    def queue(self, name: str) -> list[str]:
        """Job ids of ``name`` still pending or running."""
        return self._jobs("pr", name)

    def accounted(self, name: str) -> list[str]:
        """Job ids of ``name`` the qmaster knows: pending, running or finished."""
        return self._jobs("prz", name)


def _kill_pidfile(path: Path) -> None:
    try:
        pid = int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return
    for sig in (15, 9):
        try:
            os.kill(pid, sig)
        except OSError:
            return
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except OSError:
                return
            try:                     # our child when a subreaper took the daemon in
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass
            time.sleep(0.1)


def start_sge(slots: int = 2) -> Sge:
    """The daemons run as sgeadmin, which must reach the spool: it is a folder of its own
    under /tmp (pytest's are root's alone), removed by ``stop()``."""
    for tool in ("sge_qmaster", "sge_execd"):
        if not Path("/usr/sbin", tool).exists():
            raise SgeUnavailable(f"{tool} is not installed (apt-get install gridengine-master "
                                 "gridengine-exec gridengine-client)")
    for tool in ("qconf", "qsub", "qstat", "qdel"):
        if not shutil.which(tool):
            raise SgeUnavailable(f"{tool} is not installed (apt-get install gridengine-client)")
    if os.geteuid() != 0:
        raise SgeUnavailable("sge_qmaster and sge_execd must start as root")
    host = socket.gethostname().split(".")[0]
    cell = f"gristmill-{os.getpid()}"
    common = SGE_ROOT / cell / "common"
    folder = Path(tempfile.mkdtemp(prefix="gristmill-sge-"))
    folder.chmod(0o755)
    spool, qmaster, execd = folder / "spooldb", folder / "qmaster", folder / "execd"
    env = {"SGE_ROOT": str(SGE_ROOT), "SGE_CELL": cell,
           "SGE_QMASTER_PORT": str(free_port()), "SGE_EXECD_PORT": str(free_port())}
    sge = Sge(env=env, folder=folder)
    sge.stops.append(lambda: shutil.rmtree(folder, ignore_errors=True))
    with stopped_if_it_fails(sge, SgeUnavailable, "Grid Engine"):
        for d in (spool, qmaster / "job_scripts", execd, common):
            d.mkdir(parents=True, exist_ok=True)
        sge.stops.append(lambda: shutil.rmtree(SGE_ROOT / cell, ignore_errors=True))
        bootstrap = (DEFAULTS / "default-bootstrap").read_text() \
            if (DEFAULTS / "default-bootstrap").exists() else \
            (SGE_ROOT / "default" / "common" / "bootstrap").read_text()
        bootstrap = re.sub(r"(?m)^spooling_params\s+.*$", f"spooling_params         {spool}",
                           bootstrap)
        bootstrap = re.sub(r"(?m)^qmaster_spool_dir\s+.*$", f"qmaster_spool_dir       {qmaster}",
                           bootstrap)
        (common / "bootstrap").write_text(bootstrap)
        (common / "act_qmaster").write_text(host + "\n")
        # Where this host's name is 127.0.0.1 (a container's /etc/hosts), the qmaster
        # sees its clients as "localhost": the same host.
        (common / "host_aliases").write_text(f"{host} localhost\n")
        conf = (DEFAULTS / "default-configuration").read_text()
        for key, value in (("execd_spool_dir", str(execd)), ("min_uid", "0"),
                           ("min_gid", "0"), ("load_report_time", "00:00:02")):
            conf = re.sub(rf"(?m)^{key}\s+.*$", f"{key} {value}", conf)
        (folder / "global").write_text(conf)
        (folder / "init.sh").write_text(f"""\
set -e
{LIB}/spoolinit berkeleydb libspoolb {spool} init
{LIB}/spooldefaults configuration {folder}/global
{LIB}/spooldefaults complexes {DEFAULTS}/util/resources/centry
{LIB}/spooldefaults usersets {DEFAULTS}/util/resources/usersets
{LIB}/spooldefaults managers {ADMIN}
""")
        for path in (folder, SGE_ROOT / cell):
            for root, dirs, files in os.walk(path):
                for name in [root, *(os.path.join(root, n) for n in dirs + files)]:
                    shutil.chown(name, ADMIN, ADMIN)
        full = {**os.environ, **env}
        p = subprocess.run(["runuser", "-u", ADMIN, "--", "sh", str(folder / "init.sh")],
                           env=full, capture_output=True, text=True, timeout=60)
        if p.returncode:
            raise SgeUnavailable(f"the cell could not be spooled: {p.stderr.strip()}")
        subprocess.run(["/usr/sbin/sge_qmaster"], env=full, check=True, capture_output=True,
                       timeout=60)
        sge.stops.append(lambda: _kill_pidfile(qmaster / "qmaster.pid"))
        sge.stops.append(lambda: sge.run("qconf", "-km"))
        _until(sge, lambda: sge.run("qconf", "-sh").returncode == 0, "the qmaster to answer")
        (folder / "exec.host").write_text(EXEC_HOST.format(host=host))
        (folder / "allhosts").write_text(f"group_name @allhosts\nhostlist {host}\n")
        (folder / "queue").write_text(QUEUE.format(slots=slots))
        sched = sge.run("qconf", "-ssconf").stdout
        (folder / "sched").write_text(re.sub(r"(?m)^schedule_interval\s+.*$",
                                             "schedule_interval 0:0:1", sched))
        for argv in (("qconf", "-as", host), ("qconf", "-Ae", str(folder / "exec.host")),
                     ("qconf", "-Ahgrp", str(folder / "allhosts")),
                     ("qconf", "-Msconf", str(folder / "sched")),
                     ("qconf", "-Aq", str(folder / "queue"))):
            p = sge.run(*argv)
            if p.returncode:
                raise SgeUnavailable(f"{' '.join(argv)}: {(p.stderr or p.stdout).strip()}")
        subprocess.run(["/usr/sbin/sge_execd"], env=full, check=True, capture_output=True,
                       timeout=60)
        sge.stops.append(lambda: [_kill_pidfile(pid) for pid in execd.glob("*/execd.pid")])
        sge.stops.append(lambda: sge.run("qconf", "-ke", "all"))
        _until(sge, lambda: sge.run("qsub", "-sync", "y", "-b", "y", "-o", "/dev/null",
                                    "-j", "y", "true", timeout=60).returncode == 0,
               "a job (qsub -sync y true) to run")
        return sge


def _until(sge: Sge, ready: Callable[[], bool], what: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            messages = []
            for log in sge.folder.glob("**/messages"):
                try:
                    messages.append(f"{log}: " + " | ".join(log.read_text().splitlines()[-3:]))
                except OSError:
                    pass
            raise SgeUnavailable(f"waited {timeout:g} s for {what}; " + "; ".join(messages))
        time.sleep(0.3)
