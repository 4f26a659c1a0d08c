"""The app in a real window, as a first-time user meets it (issue 19).

Xvfb gives it a display; xdotool presses its keys and clicks; ImageMagick's ``import``
saves a screenshot of each step under ``$GRISTMILL_SHOTS`` (default
``tests/walkthrough/shots/``, which CI keeps). It opens the bundled example, runs it,
touches an input, cancels a long run, opens a broken folder and expands a 2,500-instance
fan-out. Skipped, with the reason, where Xvfb, xdotool or ImageMagick is not installed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.walkthrough

REPO = Path(__file__).resolve().parents[2]
TOOLS = ("Xvfb", "xdotool", "import", "identify")
missing = [t for t in TOOLS if shutil.which(t) is None]
if missing:
    pytestmark = [pytestmark, pytest.mark.skip(
        reason=f"the real-window walkthrough needs {', '.join(missing)} "
               "(apt-get install xvfb xdotool imagemagick; .ci/run installs them)")]

SIZE = (1440, 900)
SETTLE = 3.0          # seconds a new window is given to draw before keys go to it


def shots_dir() -> Path:
    folder = Path(os.environ.get("GRISTMILL_SHOTS") or REPO / "tests" / "walkthrough" / "shots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def wait_until(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"waited {timeout:.0f} s for {what}")


class Desktop:
    """One Xvfb display, the app started on it, keys, clicks and screenshots."""

    def __init__(self, home: Path, shots: Path):
        self.home, self.shots = home, shots
        self.number = next(n for n in range(90 + os.getpid() % 50, 400)
                           if not Path(f"/tmp/.X11-unix/X{n}").exists()
                           and not Path(f"/tmp/.X{n}-lock").exists())
        self.display = f":{self.number}"
        self.xvfb = subprocess.Popen(["Xvfb", self.display, "-screen", "0", f"{SIZE[0]}x{SIZE[1]}x24",
                                      "-nolisten", "tcp"], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        wait_until(lambda: Path(f"/tmp/.X11-unix/X{self.number}").exists(), 20, "Xvfb to start")
        self.app: subprocess.Popen | None = None
        self.window = ""

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in ("QT_QPA_PLATFORM", "WAYLAND_DISPLAY")}
        env.update(DISPLAY=self.display, QT_QPA_PLATFORM="xcb", GRISTMILL_HOME=str(self.home),
                   PYTHONPATH=os.pathsep.join([str(REPO / "src"), env.get("PYTHONPATH", "")]))
        return env

    def xdotool(self, *args: str, check: bool = True) -> str:
        p = subprocess.run(["xdotool", *args], env=self.env, capture_output=True, text=True, timeout=30)
        if check and p.returncode != 0:
            raise AssertionError(f"xdotool {' '.join(args)}: {p.stderr.strip()}")
        return p.stdout.strip()

    def windows(self, name: str) -> list[str]:
        out = self.xdotool("search", "--onlyvisible", "--name", name, check=False)
        return out.split()

    def open(self, path: Path | None) -> None:
        args = [str(path)] if path is not None else []
        self.app = subprocess.Popen([sys.executable, "-m", "gristmill", *args], env=self.env,
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        wait_until(lambda: self.windows("Gristmill"), 30, "the app's window")
        self.window = self.windows("Gristmill")[0]
        time.sleep(SETTLE)
        self.focus()

    def focus(self, window: str | None = None) -> None:
        self.xdotool("windowfocus", "--sync", window or self.window, check=False)

    def key(self, *keys: str) -> None:
        self.focus()
        self.xdotool("key", "--clearmodifiers", *keys)

    def answer(self, title: str, key: str = "Return") -> None:
        """A question box titled ``title`` is up: press ``key`` in it."""
        wait_until(lambda: self.windows(title), 15, f"the question “{title}”")
        box = self.windows(title)[0]
        time.sleep(0.5)
        self.focus(box)
        self.xdotool("key", "--clearmodifiers", key)

    def geometry(self) -> tuple[int, int, int, int]:
        out = self.xdotool("getwindowgeometry", "--shell", self.window)
        values = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
        return int(values["X"]), int(values["Y"]), int(values["WIDTH"]), int(values["HEIGHT"])

    def double_click(self, x: int, y: int) -> None:
        self.xdotool("mousemove", "--sync", str(x), str(y))
        self.xdotool("click", "--repeat", "2", "--delay", "80", "1")

    def shot(self, name: str) -> Path:
        path = self.shots / f"{name}.png"
        subprocess.run(["import", "-display", self.display, "-window", "root", str(path)],
                       check=True, timeout=60, env=self.env)
        colours = subprocess.run(["identify", "-format", "%k", str(path)], capture_output=True,
                                 text=True, timeout=60).stdout.strip()
        assert int(colours or 0) > 20, f"{path} is blank"
        return path

    def close_app(self) -> str:
        if self.app is None:
            return ""
        self.key("ctrl+q")
        try:
            out, _ = self.app.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.app.kill()
            out, _ = self.app.communicate()
            raise AssertionError(f"the app did not quit on Ctrl+Q:\n{out}")
        code, self.app = self.app.returncode, None
        assert code == 0, f"the app exited {code}:\n{out}"
        return out

    def stop(self) -> None:
        if self.app is not None:
            self.app.kill()
            self.app.wait()
        self.xvfb.terminate()
        try:
            self.xvfb.wait(10)
        except subprocess.TimeoutExpired:
            self.xvfb.kill()


@pytest.fixture
def desktop(tmp_path):
    d = Desktop(tmp_path / "home", shots_dir())
    yield d
    d.stop()


def test_a_first_time_user_walks_through_the_app(desktop, tmp_path):
    shots = []
    # 0. The welcome screen: recent workflows (none yet) and the examples with their blurbs.
    desktop.open(None)
    shots.append(desktop.shot("00-welcome"))
    # 1. The bundled example, opened from the welcome list with the keyboard (a copy of it
    # goes under the data folder), trusted and run with F5.
    desktop.key("Tab", "Tab", "Tab")          # Open Folder…, Open Workflow File…, Recent, Examples
    desktop.key("End", "Return")              # pipeline, the last example
    wait_until(lambda: desktop.windows("weather-pipeline"), 20, "the example to open")
    example = desktop.home / "data" / "examples" / "pipeline"
    assert (example / "gristmill.toml").exists()
    time.sleep(SETTLE)
    shots.append(desktop.shot("01-example-opened"))
    desktop.key("F5")
    wait_until(lambda: desktop.windows("Trust this folder"), 15, "the trust question")
    shots.append(desktop.shot("02-trust-asked"))
    desktop.answer("Trust this folder")
    wait_until(lambda: (example / "build" / "report.md").exists(), 60, "the example's report")
    time.sleep(2)
    shots.append(desktop.shot("03-example-ran"))
    # 2. An input touched: what depends on it is stale again.
    birds = example / "data" / "raw" / "birds.csv"
    later = time.time() + 2
    os.utime(birds, (later, later))
    time.sleep(4)
    shots.append(desktop.shot("04-input-touched"))
    desktop.close_app()

    # 3. A long run, cancelled with Shift+F5.
    long = tmp_path / "long"
    long.mkdir()
    (long / "gristmill.toml").write_text(
        "".join(f'[tasks.nap{i}]\ncmd = "touch started-{i}; sleep 60"\noutputs = ["nap{i}.txt"]\n'
                for i in range(3)))
    desktop.open(long)
    desktop.key("F5")
    desktop.answer("Trust this folder")
    wait_until(lambda: list(long.glob("started-*")), 30, "the long tasks to start")
    time.sleep(2)
    shots.append(desktop.shot("05-long-run-going"))
    desktop.key("shift+F5")
    time.sleep(3)
    shots.append(desktop.shot("06-long-run-cancelled"))
    desktop.close_app()

    # 4. A broken folder: its name, its error, none of the previous workflow's tasks.
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "gristmill.toml").write_text('[tasks.a]\ncmd = "true"\noutptus = ["a.txt"]\n')
    desktop.open(broken)
    shots.append(desktop.shot("07-broken-folder"))
    if desktop.windows("could not be loaded"):
        desktop.answer("could not be loaded")
        time.sleep(1)
    shots.append(desktop.shot("08-broken-folder-banner"))
    desktop.close_app()

    # 5. A 2,500-instance fan-out: one group node, expanded by a double-click.
    fan = tmp_path / "fan"
    (fan / "in").mkdir(parents=True)
    for i in range(2500):
        (fan / "in" / f"f{i:04d}.txt").write_text("x\n")
    (fan / "gristmill.toml").write_text(
        '[tasks.copy]\nforeach = "in/*.txt"\ncmd = "cp {item} {output}"\n'
        'inputs = ["{item}"]\noutputs = ["out/{stem}.txt"]\n')
    desktop.open(fan)
    time.sleep(2)
    shots.append(desktop.shot("09-fanout-collapsed"))
    x, y, w, h = desktop.geometry()
    # the group node is the only node: Fit puts it at the middle of the graph, right of
    # the Tasks panel and above the Log
    desktop.double_click(x + 440 + (w - 440) // 2, y + (h - 220) // 2 + 30)
    time.sleep(4)
    shots.append(desktop.shot("10-fanout-expanded"))
    desktop.key("ctrl+0")
    time.sleep(2)
    shots.append(desktop.shot("11-fanout-fit"))
    desktop.close_app()
    assert all(p.exists() for p in shots)
