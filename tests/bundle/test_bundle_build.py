"""The native app: build the bundle from build.spec in a temp dir, then run the frozen executable.

Marked ``bundle``; on its own: ``.venv/bin/python -m pytest -m bundle``. The normal
test run (and .ci/run) includes it. Every run of the executable gets this
process's environment (Qt offscreen, GRISTMILL_HOME in a temp dir) and checks
that nothing was written inside the bundle.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gristmill import __version__
from gristmill.app.main import SMOKE_PLANNER_ENV, SMOKE_PREFIX, SMOKE_QUIT_ENV, SMOKE_SCREENSHOT_ENV

pytestmark = pytest.mark.bundle

ROOT = Path(__file__).resolve().parents[2]
EXE = "Gristmill.exe" if sys.platform == "win32" else "Gristmill"
BUILD_TIMEOUT = 600
RUN_TIMEOUT = 120


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    """dist/Gristmill/ built from build.spec, as `pyinstaller build.spec` builds it."""
    out = tmp_path_factory.mktemp("bundle")
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "PyInstaller", "--noconfirm", "--log-level", "WARN",
         "--distpath", str(out / "dist"), "--workpath", str(out / "work"), str(ROOT / "build.spec")],
        cwd=out, capture_output=True, text=True, timeout=BUILD_TIMEOUT)
    assert proc.returncode == 0, f"pyinstaller failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
    (out / "build.log").write_text(proc.stdout + proc.stderr)
    folder = out / "dist" / "Gristmill"
    size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink())
    print(f"\nbundle built in {time.monotonic() - started:.0f} s: {size / 2**20:.0f} MiB")
    return folder


@pytest.fixture(scope="module")
def build_log(bundle) -> str:
    return (bundle.parents[1] / "build.log").read_text()


def test_the_build_does_not_warn_about_gtk_for_a_theme_plugin_it_leaves_out(build_log):
    # The qgtk3 platform theme is not shipped; the analysis must not look for its GTK.
    assert "libqgtk3" not in build_log
    assert "libgtk-3" not in build_log and "libgdk-3" not in build_log


@pytest.fixture(scope="module")
def internal(bundle) -> Path:
    return bundle / "_internal"


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {p.relative_to(folder).as_posix(): (p.lstat().st_size, p.lstat().st_mtime_ns)
            for p in folder.rglob("*")}


def run_frozen(bundle: Path, *args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess:
    """Run the frozen executable; fail if it wrote anything inside the bundle."""
    environ = dict(os.environ)                 # QT_QPA_PLATFORM=offscreen, GRISTMILL_HOME (conftest)
    for name in (SMOKE_QUIT_ENV, SMOKE_SCREENSHOT_ENV):
        environ.pop(name, None)
    environ.update(env)
    before = _snapshot(bundle)
    proc = subprocess.run([str(bundle / EXE), *args], cwd=cwd, env=environ, capture_output=True,
                          text=True, encoding="utf-8", errors="replace", timeout=RUN_TIMEOUT)
    assert _snapshot(bundle) == before, "the executable wrote inside the bundle"
    return proc


def smoke(bundle: Path, *args: str, cwd: Path, screenshot: Path | None = None,
          **more: str) -> dict:
    """Start the app offscreen; it reports on its window and quits on its own."""
    env = {SMOKE_QUIT_ENV: "1500", **more}
    if screenshot is not None:
        env[SMOKE_SCREENSHOT_ENV] = str(screenshot)
    started = time.monotonic()
    proc = run_frozen(bundle, *args, cwd=cwd, **env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = [line for line in proc.stdout.splitlines() if line.startswith(SMOKE_PREFIX)]
    assert len(lines) == 1, proc.stdout + proc.stderr
    print(f"app started and quit in {time.monotonic() - started:.1f} s")
    return json.loads(lines[0][len(SMOKE_PREFIX):])


def copy_example(internal: Path, name: str, dest: Path) -> Path:
    """A copy of the example shipped in the bundle (never run it in place)."""
    target = dest / name
    shutil.copytree(internal / "resources" / "examples" / name, target)
    return target


def test_version(bundle, tmp_path):
    proc = run_frozen(bundle, "--version", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"gristmill {__version__}"


def test_a_headless_run_of_the_bundled_example(bundle, internal, tmp_path, gristmill_home):
    example = copy_example(internal, "pipeline", tmp_path)
    assert not (example / "build").exists()
    proc = run_frozen(bundle, "run", "-C", str(example), cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = example / "build" / "report.md"
    assert "4 stations" in proc.stdout and report.is_file()
    assert sorted(p.name for p in (example / "build" / "stats").iterdir()) == \
        ["birds.json", "harbour.json", "hilltop.json", "meadow.json"]
    stamp = report.stat().st_mtime_ns
    again = run_frozen(bundle, "run", "-C", str(example), cwd=tmp_path)      # incremental: nothing to do
    assert again.returncode == 0 and "up to date" in again.stdout and report.stat().st_mtime_ns == stamp
    history = run_frozen(bundle, "history", "-C", str(example), cwd=tmp_path)
    assert history.returncode == 0 and history.stdout.count("succeeded") == 2
    assert (gristmill_home / "data").is_dir()            # history under GRISTMILL_HOME


def test_usage_errors_exit_2(bundle, tmp_path):
    proc = run_frozen(bundle, "run", "-C", str(tmp_path / "missing"), cwd=tmp_path)
    assert proc.returncode == 2 and "no such folder" in proc.stderr


def test_first_start_shows_the_welcome_view_with_the_bundled_examples(bundle, internal, tmp_path,
                                                                      gristmill_home):
    assert not any(gristmill_home.iterdir())             # no settings yet
    shot = tmp_path / "welcome.png"
    report = smoke(bundle, cwd=tmp_path, screenshot=shot)
    assert report["page"] == "welcome" and report["title"] == "Gristmill"
    bundled = sorted(p.name for p in (ROOT / "resources" / "examples").iterdir() if p.is_dir())
    assert report["examples"] == bundled and "pipeline" in bundled
    assert Path(report["resources"]) == internal / "resources"
    assert report["window_icon"] is True
    assert report["screenshot"] is True and shot.stat().st_size > 10_000
    assert (gristmill_home / "config" / "app-settings.json").is_file()


def test_the_app_opens_the_example_and_quits_on_its_own(bundle, internal, tmp_path):
    example = copy_example(internal, "pipeline", tmp_path)
    report = smoke(bundle, str(example), cwd=tmp_path)
    assert report["page"] == "workbench"
    assert report["title"] == "weather-pipeline — Gristmill"
    assert report["tasks"] == 10


def test_the_capacity_planners_chart_draws_in_the_bundle(bundle, internal, tmp_path):
    example = copy_example(internal, "pipeline", tmp_path)
    report = smoke(bundle, str(example), cwd=tmp_path, **{SMOKE_PLANNER_ENV: "1"})
    assert report["planner"] == "PlotWidget" and report["planner_drawn"] is True


def test_the_bundle_holds_what_the_app_needs_and_not_the_rest(bundle, internal):
    assert (bundle / EXE).is_file()
    shipped = {p.relative_to(internal).as_posix() for p in internal.rglob("*")}
    assert "resources/examples/pipeline/gristmill.toml" in shipped
    assert "resources/icons/gristmill.svg" in shipped
    assert "resources/icons/app/gristmill-256.png" in shipped
    assert "resources/linux/gristmill.desktop" in shipped
    assert not [p for p in shipped if p.startswith("resources/examples/") and "/build/" in p + "/"]
    qt = [p for p in shipped if p.startswith("PySide6/")]
    assert not [p for p in qt if p.endswith(".qm")], "Qt translations are not used"
    # (QtOpenGL and QtOpenGLWidgets are in: pyqtgraph, the Capacity Planner's charts,
    # imports both)
    for module in ("QtNetwork", "QtQml", "QtQuick", "QtPdf"):
        assert not [p for p in shipped if f"/{module}." in "/" + p or f"Qt6{module[2:]}." in p], module
    for plugins in ("tls", "networkinformation", "generic", "egldeviceintegrations"):
        assert not [p for p in qt if f"/plugins/{plugins}/" in p], plugins
    if sys.platform.startswith("linux"):
        assert "PySide6/Qt/plugins/platforms/libqxcb.so" in shipped
        assert "PySide6/Qt/plugins/platforms/libqwayland.so" in shipped
        assert "PySide6/Qt/plugins/platforms/libqoffscreen.so" in shipped


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads ELF dependencies")
def test_every_qt_library_a_bundled_binary_links_against_is_bundled(internal):
    from PyInstaller.depend import bindepend
    names = {p.name for p in internal.rglob("*")}
    missing = set()
    for binary in internal.rglob("*.so*"):
        if binary.is_file() and not binary.is_symlink():
            for name, _ in bindepend.get_imports(str(binary)):
                if Path(name).name.startswith(("libQt6", "libpyside6", "libshiboken6", "libicu")) \
                        and Path(name).name not in names:
                    missing.add(f"{binary.relative_to(internal)} -> {name}")
    assert not missing
