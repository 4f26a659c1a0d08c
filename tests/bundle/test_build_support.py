"""tools/build_support.py: what build.spec ships and leaves out, checked without building."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))

import build_support as bs  # noqa: E402


@pytest.mark.parametrize("dest", [
    "PySide6/Qt/translations/qtbase_de.qm",
    "PySide6/translations/qt_fr.qm",                          # the Windows wheel's layout
    "PySide6/Qt/plugins/tls/libqopensslbackend.so",
    "PySide6/Qt/plugins/generic/libqevdevmouseplugin.so",
    "PySide6/Qt/plugins/platforms/libqvnc.so",
    "PySide6/Qt/plugins/platforms/libqeglfs.so",
    "PySide6/Qt/plugins/platformthemes/libqgtk3.so",
    "PySide6/Qt/plugins/imageformats/libqtiff.so",
    "PySide6\\plugins\\imageformats\\qwebp.dll",
    "PySide6/Qt/plugins/wayland-shell-integration/libivi-shell.so",
])
def test_unused_qt_files_are_left_out(dest):
    assert bs.unwanted(dest)


@pytest.mark.parametrize("dest", [
    "PySide6/Qt/lib/libQt6Core.so.6",
    "PySide6/QtWidgets.abi3.so",
    "PySide6/Qt/plugins/platforms/libqxcb.so",
    "PySide6/Qt/plugins/platforms/libqwayland.so",
    "PySide6/Qt/plugins/platforms/libqoffscreen.so",
    "PySide6\\plugins\\platforms\\qwindows.dll",
    "PySide6/Qt/plugins/platforms/libqcocoa.dylib",
    "PySide6/Qt/plugins/styles/libqmacstyle.dylib",           # folders not named stay whole
    "PySide6/Qt/plugins/platformthemes/libqxdgdesktopportal.so",
    "PySide6/Qt/plugins/imageformats/libqsvg.so",
    "PySide6/Qt/plugins/iconengines/libqsvgicon.so",
    "PySide6/Qt/plugins/wayland-shell-integration/libxdg-shell.so",
    "PySide6/Qt/plugins/xcbglintegrations/libqxcb-glx-integration.so",
    "libicudata.so.73",
    "resources/examples/pipeline/gristmill.toml",
    "translations/not-qt.qm",
])
def test_what_the_app_loads_stays(dest):
    assert not bs.unwanted(dest)


def test_plugin_names_lose_prefix_and_suffix():
    assert [bs.plugin_name(n) for n in ("libqxcb.so", "qwindows.dll", "libqcocoa.dylib", "libxdg-shell.so")] \
        == ["qxcb", "qwindows", "qcocoa", "xdg-shell"]


def test_only_the_qt_modules_the_app_imports_are_kept():
    import PySide6
    excluded = bs.excluded_modules(PySide6.__all__)
    for name in bs.QT_MODULES:
        assert f"PySide6.{name}" not in excluded
    assert {"PySide6.QtNetwork", "PySide6.QtQml", "PySide6.QtQuick"} <= set(excluded)
    assert "tkinter" in excluded


def test_the_app_imports_no_other_qt_module():
    used = set()
    for path in (ROOT / "src" / "gristmill").rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("PySide6."):
                used.add(node.module.split(".")[1])
            elif isinstance(node, ast.Import):
                used |= {a.name.split(".")[1] for a in node.names if a.name.startswith("PySide6.")}
    assert used <= set(bs.QT_MODULES), f"update QT_MODULES in tools/build_support.py: {used}"


def _toc(*names, kind="BINARY"):
    return [(n, f"/src/{n}", kind) for n in names]


def test_prune_removes_dropped_plugins_and_the_libraries_only_they_needed():
    links = {
        "/src/PySide6/Qt/plugins/tls/libqopensslbackend.so": ["libQt6Network.so.6", "libQt6Core.so.6"],
        "/src/libQt6Network.so.6": ["libssl.so.3", "libQt6Core.so.6"],
        "/src/libssl.so.3": ["libcrypto.so.3"],
        "/src/_hashlib.so": ["libcrypto.so.3"],                 # kept: libcrypto stays
        "/src/PySide6/QtCore.abi3.so": ["libQt6Core.so.6"],
        "/src/libQt6Core.so.6": ["libicuuc.so.73"],
    }
    toc = (_toc("PySide6/Qt/plugins/tls/libqopensslbackend.so", "libQt6Network.so.6", "libssl.so.3",
                "libcrypto.so.3", "libQt6Core.so.6", "libicuuc.so.73", "libdlopened.so")
           + _toc("_hashlib.so", "PySide6/QtCore.abi3.so", kind="EXTENSION")
           + [("PySide6/Qt/translations/qt_de.qm", "/src/qt_de.qm", "DATA"),
              ("libQt6Network.so.6.11", "libQt6Network.so.6", "SYMLINK"),
              ("libQt6Core.so.6.11", "libQt6Core.so.6", "SYMLINK")])
    kept, removed = bs.prune(toc, bs.unwanted, lambda src: links.get(src, []))
    assert {e[0] for e in removed} == {
        "PySide6/Qt/plugins/tls/libqopensslbackend.so", "libQt6Network.so.6", "libssl.so.3",
        "PySide6/Qt/translations/qt_de.qm", "libQt6Network.so.6.11"}
    assert {"libcrypto.so.3", "libQt6Core.so.6", "libicuuc.so.73", "libdlopened.so",
            "libQt6Core.so.6.11"} <= {e[0] for e in kept}
    assert len(kept) + len(removed) == len(toc)


def test_prune_keeps_everything_when_nothing_is_dropped():
    toc = _toc("a.so", "b.so")
    kept, removed = bs.prune(toc, lambda dest: False, lambda src: ["b.so"])
    assert kept == toc and removed == []


def _tracked_resources() -> set[str] | None:
    git = shutil.which("git")
    if git is None or not (ROOT / ".git").exists():
        return None
    out = subprocess.run([git, "ls-files", "resources"], cwd=ROOT, capture_output=True, text=True)
    return set(out.stdout.split()) if out.returncode == 0 else None


def test_resource_datas_ship_every_tracked_file_and_no_outputs(tmp_path):
    datas = bs.resource_datas(ROOT / "resources")
    shipped = {Path(src).relative_to(ROOT).as_posix() for src, _ in datas}
    for src, dest in datas:
        assert dest == Path(src).parent.relative_to(ROOT).as_posix()      # same layout in the bundle
    assert "resources/examples/pipeline/gristmill.toml" in shipped
    assert "resources/icons/gristmill.svg" in shipped
    assert "resources/linux/gristmill.desktop" in shipped
    assert not [s for s in shipped if "/__pycache__/" in s or s.endswith(".pyc")]
    assert not [s for s in shipped if s.split("/")[1:2] == ["examples"] and s.split("/")[3] in ("build", "bin")]
    tracked = _tracked_resources()
    if tracked is not None:
        assert tracked <= shipped | {t for t in tracked if not (ROOT / t).exists()}


def test_resource_datas_skip_what_running_an_example_leaves(tmp_path):
    res = tmp_path / "resources"
    for rel in ("examples/demo/gristmill.toml", "examples/demo/build/out.txt", "examples/demo/bin/prog",
                "examples/demo/src/bin/keep.txt", "examples/demo/scripts/__pycache__/x.pyc",
                "examples/demo/.gristmill/state", "examples/demo/obj.o", "icons/a.svg"):
        (res / rel).parent.mkdir(parents=True, exist_ok=True)
        (res / rel).write_text("x")
    shipped = {Path(src).relative_to(res).as_posix() for src, _ in bs.resource_datas(res)}
    assert shipped == {"examples/demo/gristmill.toml", "examples/demo/src/bin/keep.txt", "icons/a.svg"}


def test_windows_version_info_is_a_valid_version_file():
    text = bs.windows_version_info("0.1.0", "Gristmill", "Gristmill: run workflows", "MIT")
    tree = ast.parse(text, mode="eval")                   # PyInstaller eval()s it on Windows
    assert isinstance(tree.body, ast.Call) and tree.body.func.id == "VSVersionInfo"
    assert "filevers=(0, 1, 0, 0)" in text and "StringStruct('OriginalFilename', 'Gristmill.exe')" in text
    assert "StringStruct('ProductVersion', '0.1.0')" in text


@pytest.mark.parametrize("version, expected", [
    ("0.1.0", (0, 1, 0, 0)), ("1.2rc3", (1, 2, 0, 0)), ("1.2.3.4.5", (1, 2, 3, 4)), ("dev", (0, 0, 0, 0))])
def test_version_tuple(version, expected):
    assert bs.version_tuple(version) == expected


def test_the_qt_hooks_never_collect_a_plugin_the_app_leaves_out(tmp_path):
    # As PyInstaller's QtLibraryInfo.collect_plugins gives them: (source file, destination folder).
    found = {"platformthemes": [(str(tmp_path / "libqgtk3.so"), "PySide6/Qt/plugins/platformthemes"),
                                (str(tmp_path / "libqxdgdesktopportal.so"),
                                 "PySide6/Qt/plugins/platformthemes")],
             "tls": [(str(tmp_path / "libqopensslbackend.so"), "PySide6/Qt/plugins/tls")]}

    class LibraryInfo:
        def collect_plugins(self, plugin_type):
            return found[plugin_type]

    bs.collect_wanted_plugins(LibraryInfo)
    bs.collect_wanted_plugins(LibraryInfo)          # twice is once
    info = LibraryInfo()
    assert info.collect_plugins("platformthemes") == [found["platformthemes"][1]]
    assert info.collect_plugins("tls") == []


def test_build_spec_makes_the_qt_hooks_collect_only_wanted_plugins():
    spec = (ROOT / "build.spec").read_text()
    assert "build_support.collect_wanted_plugins(qt_hooks.QtLibraryInfo)" in spec
    assert spec.index("collect_wanted_plugins") < spec.index("a = Analysis(")


def test_numpys_libraries_are_copied_unstripped_and_the_rest_stripped():
    binaries = [("numpy.libs/libscipy_openblas64_-32a4b2a6.so", "/x/a.so", "BINARY"),
                ("numpy/_core/_multiarray_umath.cpython-311-x86_64-linux-gnu.so", "/x/b.so",
                 "EXTENSION"),
                ("PySide6/Qt/lib/libQt6Core.so.6", "/x/c.so", "BINARY")]
    strip, copy = bs.unstripped(binaries)
    assert strip == [binaries[2]]
    assert [(d, t) for d, _s, t in copy] == [(binaries[0][0], "DATA"), (binaries[1][0], "DATA")]
