"""What build.spec puts in the bundle and leaves out of it, and the Windows version info.

PySide6 ships all of Qt; the app uses QtCore, QtGui, QtWidgets and QtSvg.
PyInstaller's Qt hooks collect every plugin of those modules and, with them,
the libraries the plugins need, so excluding Python modules is not enough:
``trim`` also removes the plugins the app never loads, the Qt translations (the
app is not translated), and then every library that only those plugins needed.

Pure functions over PyInstaller's TOC lists of ``(dest_name, src_name,
typecode)``; tests/bundle/test_build_support.py checks them without building.
"""

from __future__ import annotations

import os
import posixpath
import re
from collections import deque
from pathlib import Path
from typing import Callable, Iterable

# The PySide6 modules the app imports (QtOpenGL and QtOpenGLWidgets: pyqtgraph, the
# Capacity Planner's charts, imports both whenever it is imported; about 10 MB with
# their bindings); build.spec excludes the others.
QT_MODULES = ("QtCore", "QtGui", "QtWidgets", "QtSvg", "QtOpenGL", "QtOpenGLWidgets")
OTHER_EXCLUDES = ("tkinter", "_tkinter", "test", "idlelib", "lib2to3", "pydoc_data", "ensurepip")

# Plugin folders dropped whole: embedded-device input and display, network,
# TLS, QML tooling, Wayland *compositor* (server) buffers, databases, printing.
DROP_PLUGIN_DIRS = frozenset({
    "generic", "egldeviceintegrations", "networkinformation", "tls", "qmltooling",
    "wayland-graphics-integration-server", "sqldrivers", "printsupport", "multimedia",
    "position", "sensors", "texttospeech", "webview", "designer", "renderers", "scenegraph",
})
# Plugin folders of which only these plugins stay (names without lib prefix and suffix).
KEEP_PLUGINS = {
    # Linux: X11, Wayland; everywhere: offscreen (tests, smoke runs) and minimal.
    "platforms": frozenset({"qxcb", "qwayland", "qoffscreen", "qminimal",
                            "qwindows", "qdirect2d", "qcocoa"}),
    # Not qgtk3: it would drag GTK, cairo and pango from the build machine into the bundle.
    "platformthemes": frozenset({"qxdgdesktopportal"}),
    # The app draws SVG through QtSvg and PNG is built in; .ico for Windows shell icons.
    "imageformats": frozenset({"qsvg", "qico"}),
    # Every desktop compositor speaks xdg-shell.
    "wayland-shell-integration": frozenset({"xdg-shell"}),
    "platforminputcontexts": frozenset({"composeplatforminputcontextplugin",
                                        "ibusplatforminputcontextplugin"}),
}

# resources/ as shipped: everything but what running an example in place leaves behind.
SKIP_ANYWHERE = frozenset({"__pycache__", ".gristmill", ".git", ".DS_Store", ".gitignore"})
SKIP_IN_EXAMPLE = frozenset({"build", "bin"})       # outputs at the top of an example folder
SKIP_SUFFIXES = (".pyc", ".pyo", ".o", ".a")


def excluded_modules(available: Iterable[str]) -> list[str]:
    """Analysis(excludes=...): every PySide6 module but QT_MODULES, and a few unused stdlib parts."""
    return sorted(f"PySide6.{m}" for m in available if m not in QT_MODULES) + list(OTHER_EXCLUDES)


def _norm(dest: str) -> str:
    return dest.replace("\\", "/")


def plugin_name(filename: str) -> str:
    """``libqxcb.so`` / ``qwindows.dll`` / ``libqcocoa.dylib`` -> ``qxcb`` / ``qwindows`` / ``qcocoa``."""
    stem = filename.split(".", 1)[0]
    return stem[3:] if stem.startswith("lib") else stem


def unwanted(dest: str) -> bool:
    """True for a bundled file the app never loads: a dropped plugin, or a Qt translation."""
    parts = _norm(dest).split("/")
    if parts[0] != "PySide6":
        return False
    if "translations" in parts[:-1] and parts[-1].endswith(".qm"):
        return True
    if "plugins" in parts[:-2]:
        folder, name = parts[-2], plugin_name(parts[-1])
        if folder in DROP_PLUGIN_DIRS:
            return True
        keep = KEEP_PLUGINS.get(folder)
        return keep is not None and name not in keep
    return False


def collect_wanted_plugins(library_info: type) -> None:
    """Make PyInstaller's Qt hooks collect only the plugins the app loads.

    ``library_info`` is PyInstaller's ``QtLibraryInfo``; its ``collect_plugins`` is
    wrapped so that what ``unwanted`` names is never collected. ``prune`` alone
    removes such a plugin only after the analysis has looked for the libraries it
    links against, and warned of each one missing on the build machine (the GTK
    platform theme: libgtk-3.so.0, libgdk-3.so.0), a warning that means nothing
    for the bundle. Wrapping twice is the same as once.
    """
    collect = library_info.collect_plugins
    if getattr(collect, "gristmill_wanted_only", False):
        return

    def collect_plugins(self, plugin_type):
        return [(src, dst) for src, dst in collect(self, plugin_type)
                if not unwanted(posixpath.join(_norm(dst), os.path.basename(src)))]

    collect_plugins.gristmill_wanted_only = True  # type: ignore[attr-defined]
    library_info.collect_plugins = collect_plugins


def _symlink_target(entry: tuple[str, str, str]) -> list[str]:
    dest, target, _ = entry
    target = _norm(target)
    return [posixpath.normpath(target), posixpath.normpath(posixpath.join(posixpath.dirname(_norm(dest)), target))]


def prune(toc: list[tuple[str, str, str]], drop: Callable[[str], bool],
          imports_of: Callable[[str], Iterable[str]]) -> tuple[list, list]:
    """Remove the entries ``drop`` names, then the libraries only they needed.

    ``imports_of(src_name)`` gives the file names a binary links against. A
    library goes when a dropped binary linked against it (directly or through
    other libraries) and no kept binary does. A library that nothing dropped
    links against stays whatever it is for, so one loaded with dlopen or ctypes
    is never lost by accident. Returns (kept, removed).
    """
    by_base: dict[str, list[int]] = {}
    for i, (dest, _, kind) in enumerate(toc):
        if kind in ("BINARY", "EXTENSION"):
            by_base.setdefault(posixpath.basename(_norm(dest)), []).append(i)

    def needs(i: int) -> list[int]:
        out = []
        for name in imports_of(toc[i][1]):
            out += by_base.get(posixpath.basename(_norm(name)), [])
        return out

    def closure(start: Iterable[int]) -> set[int]:
        seen, todo = set(start), deque(start)
        while todo:
            for j in needs(todo.popleft()):
                if j not in seen:
                    seen.add(j)
                    todo.append(j)
        return seen

    binaries = [i for i, e in enumerate(toc) if e[2] in ("BINARY", "EXTENSION")]
    dropped = {i for i in binaries if drop(toc[i][0])}
    suspects = closure(dropped) - dropped
    roots = [i for i in binaries if i not in dropped and i not in suspects]
    still_needed = closure(roots)
    gone = dropped | (suspects - still_needed)
    gone_dests = {posixpath.normpath(_norm(toc[i][0])) for i in gone}
    kept, removed = [], []
    for i, entry in enumerate(toc):
        lost = i in gone or (entry[2] != "SYMLINK" and drop(entry[0])) or (
            entry[2] == "SYMLINK" and any(t in gone_dests for t in _symlink_target(entry)))
        (removed if lost else kept).append(entry)
    return kept, removed


def pyinstaller_imports(src_name: str) -> list[str]:
    """The libraries a binary links against, as PyInstaller's own analysis reads them."""
    from PyInstaller.depend import bindepend
    try:
        return [name for name, _ in bindepend.get_imports(src_name)]
    except Exception:          # an unreadable file keeps what it needs: treat as needing nothing
        return []


def resource_datas(resources: Path, dest_root: str = "resources") -> list[tuple[str, str]]:
    """Analysis(datas=...): each shipped file of ``resources/`` as (source file, destination folder)."""
    out = []
    for folder, dirs, files in os.walk(resources):
        here = Path(folder)
        rel = here.relative_to(resources)
        in_example_root = len(rel.parts) == 2 and rel.parts[0] == "examples"
        dirs[:] = sorted(d for d in dirs if d not in SKIP_ANYWHERE
                         and not (in_example_root and d in SKIP_IN_EXAMPLE))
        for name in sorted(files):
            if name in SKIP_ANYWHERE or name.endswith(SKIP_SUFFIXES):
                continue
            out.append((str(here / name), posixpath.join(dest_root, *rel.parts)))
    return out


def describe(removed: list[tuple[str, str, str]]) -> str:
    size = sum(os.path.getsize(src) for _, src, kind in removed
               if kind != "SYMLINK" and os.path.isfile(src))
    return f"left out {len(removed)} files ({size / 2**20:.1f} MiB) the app does not use"


def version_tuple(version: str) -> tuple[int, int, int, int]:
    """``0.1.0`` -> (0, 1, 0, 0); what a Windows version resource holds."""
    release = re.match(r"\d+(?:\.\d+)*", version)        # 1.2rc3 -> 1.2
    numbers = [int(n) for n in release.group().split(".")[:4]] if release else []
    return tuple(numbers + [0] * (4 - len(numbers)))  # type: ignore[return-value]


def windows_version_info(version: str, name: str, description: str, copyright: str) -> str:
    """The text of a PyInstaller version file (``EXE(version=...)``) for ``name``.exe."""
    v = version_tuple(version)
    strings = {
        "CompanyName": name, "FileDescription": description, "FileVersion": version,
        "InternalName": name, "LegalCopyright": copyright, "OriginalFilename": f"{name}.exe",
        "ProductName": name, "ProductVersion": version,
    }
    table = ",\n          ".join(f"StringStruct({k!r}, {val!r})" for k, val in strings.items())
    return f"""VSVersionInfo(
  ffi=FixedFileInfo(filevers={v}, prodvers={v}, mask=0x3f, flags=0x0, OS=0x40004,
                    fileType=0x1, subtype=0x0, date=(0, 0)),
  kids=[
    StringFileInfo([StringTable('040904B0', [
          {table}])]),
    VarFileInfo([VarStruct('Translation', [1033, 1200])]),
  ])
"""


# numpy's wheels carry OpenBLAS (numpy.libs/libscipy_openblas64_-….so), which `strip`
# breaks ("ELF load command address/offset not page-aligned"): numpy's files are copied
# as they are (the Capacity Planner's pyqtgraph needs numpy).
UNSTRIPPED_PREFIXES = ("numpy.libs/", "numpy/")


def unstripped(binaries: list[tuple], prefixes: tuple[str, ...] = UNSTRIPPED_PREFIXES
               ) -> tuple[list[tuple], list[tuple]]:
    """(binaries to strip, the rest as DATA entries, copied unchanged)."""
    keep, copy = [], []
    for entry in binaries:
        dest = _norm(entry[0])
        if dest.startswith(prefixes):
            copy.append((entry[0], entry[1], "DATA"))
        else:
            keep.append(entry)
    return keep, copy
