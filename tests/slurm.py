"""A real single-node Slurm for the tests: munged, slurmctld and slurmd on this machine.

``start_slurm(folder)`` writes a minimal ``slurm.conf`` there (its own ports, state and
logs, so it cannot clash with a Slurm the machine runs), starts munged (as the munge
user, when no munged answers yet), slurmctld and slurmd (as root), and waits until
``srun hostname`` answers. It returns the environment a client needs
(``SLURM_CONF``) and a ``stop()``; or raises ``SlurmUnavailable`` saying why, for
the tests to skip with. ``.ci/run`` installs slurm-wlm and munge.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

from batch import BatchSystem, free_port, stopped_if_it_fails


class SlurmUnavailable(Exception):
    pass


class Slurm(BatchSystem):
    def queue(self, name: str) -> list[str]:
        """Job ids of ``name`` still pending or running."""
        p = self.run("squeue", "-h", "-n", name, "-o", "%i")
        return p.stdout.split()

    def accounted(self, name: str) -> list[str]:
        """Job ids of ``name`` slurmctld knows (all states), from scontrol."""
        p = self.run("scontrol", "-o", "show", "job")
        return [line.split()[0].split("=")[1] for line in p.stdout.splitlines()
                if f"JobName={name} " in line]


def _munge_answers() -> bool:
    if not shutil.which("munge"):
        return False
    try:
        p = subprocess.run("munge -n | unmunge", shell=True, capture_output=True, timeout=10)
    except subprocess.SubprocessError:
        return False
    return p.returncode == 0


def _stop_munged() -> None:
    pidfile = Path("/run/munge/munged.pid")
    try:
        os.kill(int(pidfile.read_text().split()[0]), 15)
    except (OSError, ValueError, IndexError):
        pass


def _terminate(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def start_slurm(folder: Path, cpus: int = 2, mem_mb: int = 4096) -> Slurm:
    for tool in ("slurmctld", "slurmd", "srun", "sbatch", "munged"):
        if not shutil.which(tool) and not os.path.exists(f"/usr/sbin/{tool}"):
            raise SlurmUnavailable(f"{tool} is not installed (apt-get install slurm-wlm munge)")
    if os.geteuid() != 0:
        raise SlurmUnavailable("slurmctld and slurmd must start as root")
    folder.mkdir(parents=True, exist_ok=True)
    host = socket.gethostname().split(".")[0]
    slurm = Slurm(env={}, folder=folder)
    with stopped_if_it_fails(slurm, SlurmUnavailable, "Slurm"):
        if not _munge_answers():
            key = Path("/etc/munge/munge.key")
            if not key.exists():
                key.parent.mkdir(parents=True, exist_ok=True)
                if shutil.which("mungekey"):
                    subprocess.run(["mungekey", "-c", "-f", "-k", str(key)], check=True)
                else:
                    key.write_bytes(os.urandom(1024))
                shutil.chown(key, "munge", "munge")
                key.chmod(0o400)
            for d in ("/run/munge", "/var/lib/munge", "/var/log/munge"):
                os.makedirs(d, exist_ok=True)
                shutil.chown(d, "munge", "munge")
            subprocess.run(["runuser", "-u", "munge", "--", "/usr/sbin/munged", "--force"],
                           check=True, capture_output=True, timeout=30)
            slurm.stops.append(_stop_munged)       # ours: stopped with the rest
            deadline = time.monotonic() + 15
            while not _munge_answers():
                if time.monotonic() > deadline:
                    raise SlurmUnavailable("munged started but does not answer")
                time.sleep(0.2)
        for d in ("state", "spool", "log"):
            (folder / d).mkdir(exist_ok=True)
        ctld_port, d_port = free_port(), free_port()
        conf = folder / "slurm.conf"
        conf.write_text(f"""\
ClusterName=gristmilltest
SlurmctldHost={host}
SlurmctldPort={ctld_port}
SlurmdPort={d_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation={folder}/state
SlurmdSpoolDir={folder}/spool/%n
SlurmctldPidFile={folder}/slurmctld.pid
SlurmdPidFile={folder}/slurmd.pid
SlurmctldLogFile={folder}/log/slurmctld.log
SlurmdLogFile={folder}/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MinJobAge=600
ReturnToService=2
SchedulerType=sched/backfill
SlurmctldTimeout=30
SlurmdTimeout=30
MpiDefault=none
NodeName={host} CPUs={cpus} RealMemory={mem_mb} State=UNKNOWN
PartitionName=debug Nodes={host} Default=YES MaxTime=INFINITE State=UP
""")
        slurm.env = {"SLURM_CONF": str(conf)}
        env = {**os.environ, **slurm.env}
        ctld = subprocess.Popen(["slurmctld", "-D", "-i", "-f", str(conf)], env=env,
                                stdout=subprocess.DEVNULL, stderr=open(folder / "log/ctld.err", "w"))
        slurm.stops.append(lambda: _terminate(ctld))
        d = subprocess.Popen(["slurmd", "-D", "-f", str(conf)], env=env,
                             stdout=subprocess.DEVNULL, stderr=open(folder / "log/d.err", "w"))
        slurm.stops.append(lambda: _terminate(d))
        deadline = time.monotonic() + 60
        last = ""
        while True:
            if ctld.poll() is not None or d.poll() is not None:
                raise SlurmUnavailable("slurmctld or slurmd exited: " + _tail(folder))
            try:
                p = slurm.run("srun", "-N1", "-t", "1", "hostname", timeout=20)
                if p.returncode == 0 and p.stdout.strip():
                    break
                last = p.stderr.strip()
            except subprocess.TimeoutExpired:
                last = "srun hostname did not answer in 20 s"
            if time.monotonic() > deadline:
                raise SlurmUnavailable(f"srun hostname does not answer: {last}; " + _tail(folder))
            time.sleep(0.5)
        return slurm


def _tail(folder: Path) -> str:
    out = []
    for name in ("log/slurmctld.log", "log/slurmd.log", "log/ctld.err", "log/d.err"):
        try:
            out.append(name + ": " + " | ".join((folder / name).read_text().splitlines()[-3:]))
        except OSError:
            pass
    return "; ".join(out)
