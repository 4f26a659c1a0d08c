"""Render the application icon for every platform into resources/icons/app/.

    .venv/bin/python tools/render_icons.py

Draws resources/icons/gristmill.svg (and, up to 32 px, the simplified
resources/icons/app/gristmill-small.svg) with QtSvg into:

- gristmill-<N>.png for N in SIZES: the Linux hicolor sizes (the .desktop file's
  ``Icon=gristmill``) and the source of the other two files;
- gristmill.ico: the Windows executable's icon, PNG-compressed entries;
- gristmill.icns: the macOS app's icon, the artwork inset on Apple's icon grid
  (an 824 px tile on a 1024 px canvas) so it sits in the Dock like its neighbours.

The output is committed, so building the app needs no rendering step; run this
again only after changing either SVG. Needs only PySide6 (no display).
"""

from __future__ import annotations

import argparse
import os
import struct
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LARGE_SVG = ROOT / "resources" / "icons" / "gristmill.svg"
SMALL_SVG = ROOT / "resources" / "icons" / "app" / "gristmill-small.svg"
OUT = ROOT / "resources" / "icons" / "app"

SIZES = (16, 20, 22, 24, 32, 40, 48, 64, 128, 256, 512, 1024)
SMALL_UP_TO = 32                    # sizes up to this use the simplified drawing
ICO_SIZES = (16, 20, 24, 32, 40, 48, 64, 256)
# macOS icon types: (OSType, pixels); the @2x types hold twice the nominal size.
ICNS_TYPES = (("icp4", 16), ("icp5", 32), ("icp6", 64), ("ic07", 128), ("ic08", 256),
              ("ic09", 512), ("ic10", 1024), ("ic11", 32), ("ic12", 64), ("ic13", 256),
              ("ic14", 512))
# The large artwork's tile spans 240 of its 256 units; Apple's grid puts an
# 824-px tile on a 1024-px canvas. The small drawing's tile spans 31 of 32.
MAC_TILE = 824 / 1024
ART_TILE = {LARGE_SVG: 240 / 256, SMALL_SVG: 31 / 32}


def _svg_for(size: int) -> Path:
    return SMALL_SVG if size <= SMALL_UP_TO else LARGE_SVG


def render_png(size: int, inset_to: float | None = None) -> bytes:
    """The icon at ``size`` px as PNG bytes; ``inset_to`` scales the tile to that share of the canvas."""
    from PySide6.QtCore import QBuffer, QByteArray, QIODevice, QRectF, Qt
    from PySide6.QtGui import QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    svg = _svg_for(size)
    renderer = QSvgRenderer(str(svg))
    if not renderer.isValid():
        raise SystemExit(f"{svg}: not a valid SVG")
    image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
    side = size * (inset_to / ART_TILE[svg] if inset_to else 1.0)
    offset = (size - side) / 2
    renderer.render(painter, QRectF(offset, offset, side, side))
    painter.end()
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    image.convertToFormat(QImage.Format.Format_ARGB32).save(buffer, "PNG")
    buffer.close()
    return bytes(data)


def ico_bytes(pngs: dict[int, bytes]) -> bytes:
    """A Windows .ico whose entries are PNGs (read by Windows Vista and later)."""
    sizes = sorted(pngs)
    header = struct.pack("<HHH", 0, 1, len(sizes))
    offset = 6 + 16 * len(sizes)
    entries, blobs = b"", b""
    for s in sizes:
        data = pngs[s]
        dim = 0 if s >= 256 else s                    # 0 means 256 in an ICONDIRENTRY
        entries += struct.pack("<BBBBHHII", dim, dim, 0, 0, 1, 32, len(data), offset)
        blobs += data
        offset += len(data)
    return header + entries + blobs


def icns_bytes(entries: list[tuple[str, bytes]]) -> bytes:
    """A macOS .icns of PNG-compressed entries."""
    body = b"".join(kind.encode("ascii") + struct.pack(">I", 8 + len(data)) + data for kind, data in entries)
    return b"icns" + struct.pack(">I", 8 + len(body)) + body


def render_all(out: Path = OUT) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    pngs = {s: render_png(s) for s in SIZES}
    for s, data in pngs.items():
        path = out / f"gristmill-{s}.png"
        path.write_bytes(data)
        written.append(path)
    ico = out / "gristmill.ico"
    ico.write_bytes(ico_bytes({s: pngs[s] for s in ICO_SIZES}))
    mac = {px: render_png(px, inset_to=MAC_TILE) for px in sorted({px for _, px in ICNS_TYPES})}
    icns = out / "gristmill.icns"
    icns.write_bytes(icns_bytes([(kind, mac[px]) for kind, px in ICNS_TYPES]))
    written += [ico, icns]
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=OUT, help=f"output folder (default: {OUT})")
    args = parser.parse_args(argv)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")      # rendering needs no display
    from PySide6.QtGui import QGuiApplication
    app = QGuiApplication.instance() or QGuiApplication([sys.argv[0]])  # noqa: F841  (fonts, image I/O)
    for path in render_all(args.out):
        print(f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}  {path.stat().st_size} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
