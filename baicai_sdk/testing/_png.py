"""Real PNG files written with zlib and struct (no Pillow in the SDK).

Images are flat colour with a few stripes: any decoder accepts them, they have the requested size, and even a
1792×1024 image compresses to a few KB, so a test that asks for ten of them stays fast.
"""

from __future__ import annotations

import struct
import zlib
from functools import lru_cache

__all__ = ["make_png"]


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


@lru_cache(maxsize=32)
def make_png(width: int, height: int, colour: tuple[int, int, int] = (88, 160, 72)) -> bytes:
    """An RGB PNG of ``width`` × ``height``: ``colour`` with a darker band every 64 rows."""
    light = bytes(colour) * width
    dark = bytes(max(0, c - 48) for c in colour) * width
    rows = []
    for y in range(height):
        rows.append(b"\x00")  # filter type None
        rows.append(dark if (y // 32) % 2 else light)
    raw = b"".join(rows)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(raw, 9)) + _chunk(b"IEND", b"")
