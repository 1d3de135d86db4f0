"""Draw wems-upgrade's icon and write build/wems-upgrade.ico (16, 32 and 48 px frames).

Usage: python build/make_icon.py

Standard library only, and deterministic: the same script always writes the same bytes, so the
committed .ico can be checked against it (tests/test_exe_metadata.py). The picture: a rounded
blue square (the installation) with a white arrow pointing up (the upgrade), drawn at 4x and
averaged down so the edges are smooth at every size. The frames are 32-bit BMPs with an alpha
channel, which every Windows version since XP shows.
"""

from __future__ import annotations

import struct
from pathlib import Path

ICON = Path(__file__).resolve().parent / "wems-upgrade.ico"
SIZES = (16, 32, 48)
SUPERSAMPLE = 4
BLUE = (0x1F, 0x5F, 0xA8)
WHITE = (0xFF, 0xFF, 0xFF)


def _inside_rounded_square(x: float, y: float, radius: float) -> bool:
    """(x, y) in the unit square [0, 1]² with corners rounded by `radius`."""
    cx = min(max(x, radius), 1 - radius)
    cy = min(max(y, radius), 1 - radius)
    return (x - cx) ** 2 + (y - cy) ** 2 <= radius**2


def _inside_arrow(x: float, y: float) -> bool:
    """An upward arrow: a triangular head over a shaft. y grows downwards."""
    head_top, head_bottom, head_half = 0.17, 0.52, 0.30
    if head_top <= y <= head_bottom:
        half = head_half * (y - head_top) / (head_bottom - head_top)
        return abs(x - 0.5) <= half
    return head_bottom < y <= 0.83 and abs(x - 0.5) <= 0.11


def pixel(x: float, y: float) -> tuple[int, int, int, int] | None:
    """Colour (r, g, b, a) at the point (x, y) of the unit square, or None outside the icon."""
    if not _inside_rounded_square(x, y, 0.2):
        return None
    return (*(WHITE if _inside_arrow(x, y) else BLUE), 255)


def render(size: int) -> list[list[tuple[int, int, int, int]]]:
    """size x size RGBA pixels, top row first, each the average of SUPERSAMPLE² samples."""
    n = SUPERSAMPLE
    rows = []
    for py in range(size):
        row = []
        for px in range(size):
            totals, covered = [0, 0, 0], 0
            for sy in range(n):
                for sx in range(n):
                    colour = pixel((px + (sx + 0.5) / n) / size, (py + (sy + 0.5) / n) / size)
                    if colour:
                        covered += 1
                        for i in range(3):
                            totals[i] += colour[i]
            if covered:
                row.append((*(round(t / covered) for t in totals), round(255 * covered / (n * n))))
            else:
                row.append((0, 0, 0, 0))
        rows.append(row)
    return rows


def bmp_frame(size: int) -> bytes:
    """One ICO frame: BITMAPINFOHEADER (height doubled for the AND mask), BGRA rows bottom-up, AND mask."""
    header = struct.pack("<IiiHHIIiiII", 40, size, size * 2, 1, 32, 0, 0, 0, 0, 0, 0)
    pixels = b"".join(bytes((b, g, r, a)) for row in reversed(render(size)) for (r, g, b, a) in row)
    mask_row = ((size + 31) // 32) * 4  # 1 bit a pixel, rows padded to 32 bits; all 0: alpha decides
    return header + pixels + bytes(mask_row * size)


def ico_bytes(sizes: tuple[int, ...] = SIZES) -> bytes:
    frames = [bmp_frame(s) for s in sizes]
    offset = 6 + 16 * len(frames)
    directory = struct.pack("<HHH", 0, 1, len(frames))
    for size, frame in zip(sizes, frames, strict=True):
        directory += struct.pack("<BBBBHHII", size % 256, size % 256, 0, 0, 1, 32, len(frame), offset)
        offset += len(frame)
    return directory + b"".join(frames)


def main() -> Path:
    ICON.write_bytes(ico_bytes())
    print(f"wrote {ICON} ({ICON.stat().st_size} bytes, {', '.join(f'{s} px' for s in SIZES)})")
    return ICON


if __name__ == "__main__":
    main()
