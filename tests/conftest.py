"""Shared test setup: Qt offscreen, and every Gristmill path in a temp dir."""

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def gristmill_home(tmp_path_factory, monkeypatch):
    """Settings, history and logs of each test live in a fresh temp dir."""
    home = tmp_path_factory.mktemp("gristmill-home")
    monkeypatch.setenv("GRISTMILL_HOME", str(home))
    return home


@pytest.fixture
def full_disk(tmp_path):
    """A folder on a tiny tmpfs that is already full: every write there fails with ENOSPC.

    Needs root (as in CI); skipped, with the reason, where mount is not allowed.
    """
    import subprocess
    mount = tmp_path / "full"
    mount.mkdir()
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)],
                       capture_output=True, text=True)
    if p.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {p.stderr.strip() or p.returncode}")
    try:
        (mount / "runs").mkdir()
        (mount / "data").mkdir()
        with open(mount / "filler", "wb", buffering=0) as f:
            try:
                while True:
                    f.write(b"\0" * 4096)
            except OSError:
                pass
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory):
    """A real single-node Slurm (munged, slurmctld, slurmd) for the session, stopped at
    its end; skipped, with the reason, where it cannot be installed or started."""
    from slurm import SlurmUnavailable, start_slurm
    try:
        s = start_slurm(tmp_path_factory.mktemp("slurm"))
    except SlurmUnavailable as exc:
        pytest.skip(f"no single-node Slurm here: {exc}")
    yield s
    s.stop()


@pytest.fixture(scope="session")
def sge_cluster():
    """A real single-node Grid Engine (sge_qmaster, sge_execd: tests/sge.py) for the
    session, stopped at its end; skipped, with the reason, where it cannot be had."""
    from sge import SgeUnavailable, start_sge
    try:
        s = start_sge()
    except SgeUnavailable as exc:
        pytest.skip(f"no single-node Grid Engine here: {exc}")
    yield s
    s.stop()


@pytest.fixture(params=__import__("batch").KINDS)
def batch(request):
    """(kind, the running batch system: .env, .queue(name), .accounted(name)), once per
    batch system of tests/batch.py's ``KINDS``."""
    return request.param, request.getfixturevalue(f"{request.param}_cluster")
