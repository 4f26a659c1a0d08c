"""The app icon at each platform's sizes (PNG, .ico, .icns) and the Linux desktop entry."""

from __future__ import annotations

import configparser
import struct
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
APP_ICONS = ROOT / "resources" / "icons" / "app"
sys.path.insert(0, str(ROOT / "tools"))

import render_icons  # noqa: E402

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == PNG_MAGIC
    return struct.unpack(">II", data[16:24])


@pytest.mark.parametrize("size", render_icons.SIZES)
def test_a_png_for_every_size(size):
    assert png_size((APP_ICONS / f"gristmill-{size}.png").read_bytes()) == (size, size)


def test_the_linux_sizes_are_there():
    assert {16, 22, 24, 32, 48, 64, 128, 256, 512} <= set(render_icons.SIZES)


def test_the_windows_ico_holds_each_size_as_png():
    data = (APP_ICONS / "gristmill.ico").read_bytes()
    reserved, kind, count = struct.unpack("<HHH", data[:6])
    assert (reserved, kind) == (0, 1) and count == len(render_icons.ICO_SIZES)
    sizes = []
    for i in range(count):
        w, h, _, _, planes, bits, length, offset = struct.unpack("<BBBBHHII", data[6 + 16 * i: 22 + 16 * i])
        image = data[offset: offset + length]
        assert png_size(image) == ((w or 256), (h or 256)) and bits == 32
        sizes.append(w or 256)
    assert sorted(sizes) == sorted(render_icons.ICO_SIZES)
    assert {16, 32, 48, 256} <= set(sizes)


def test_the_macos_icns_holds_every_type_it_needs():
    data = (APP_ICONS / "gristmill.icns").read_bytes()
    assert data[:4] == b"icns" and struct.unpack(">I", data[4:8])[0] == len(data)
    found, i = {}, 8
    while i < len(data):
        kind, length = data[i:i + 4].decode("ascii"), struct.unpack(">I", data[i + 4:i + 8])[0]
        found[kind] = png_size(data[i + 8:i + length])[0]
        i += length
    assert found == dict(render_icons.ICNS_TYPES)
    assert {"ic07", "ic08", "ic09", "ic10"} <= set(found)       # 128, 256, 512, 1024 (512@2x)


def test_the_icons_are_drawn_from_the_committed_svgs():
    for svg in (render_icons.LARGE_SVG, render_icons.SMALL_SVG):
        assert svg.is_file() and b"<svg" in svg.read_bytes()


def test_render_icons_writes_every_file(tmp_path, qapp):
    written = render_icons.render_all(tmp_path)
    assert {p.name for p in written} == {p.name for p in APP_ICONS.iterdir() if p.suffix != ".svg"}
    assert png_size((tmp_path / "gristmill-16.png").read_bytes()) == (16, 16)


def test_the_desktop_entry():
    entry = configparser.ConfigParser(interpolation=None)
    entry.optionxform = str
    entry.read(ROOT / "resources" / "linux" / "gristmill.desktop", encoding="utf-8")
    d = entry["Desktop Entry"]
    assert d["Type"] == "Application" and d["Name"] == "Gristmill"
    assert d["Exec"].split()[0] == "gristmill" and d["Terminal"] == "false"
    assert d["Icon"] == "gristmill"
    assert d["Categories"].endswith(";") and "Development" in d["Categories"].split(";")
    # Wayland matches windows to the entry by this name; X11 by the window class.
    from gristmill.app.main import create_app
    app = create_app()
    assert app.desktopFileName() == "gristmill" == Path("gristmill.desktop").stem
    assert d["StartupWMClass"] == app.applicationName()
