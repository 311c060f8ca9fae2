"""Line plots as images with PIL alone (matplotlib is not a dependency): axes with numbered ticks, one colour
per series, dashed horizontal reference lines (targets, controls) and a legend under the plot. Text is drawn with PIL's
own font, the same on every machine; it has Latin letters and the degree sign but no Greek or maths glyphs,
so write "sigma" and "x". A leaf: imports nothing of regaze but errors.py.

    img = line_plot(series={"model": [(10, 14.2), (30, 11.0)]}, x_label="CPU minutes", y_label="degrees",
                    title="gaze error", hlines={"target: 2 x floor": 7.4})   # (400, 640, 3) uint8
    save_png("curve.png", img)                                              # regaze.image_io
"""
from __future__ import annotations

import math

import numpy as np

from regaze.errors import RegazeError

__all__ = ["line_plot", "text_panel", "SERIES_COLOURS", "HLINE_COLOURS", "TARGET_COLOUR"]

SERIES_COLOURS = ((31, 119, 180), (255, 127, 14), (44, 160, 44), (148, 103, 189), (23, 190, 207), (188, 189, 34))
HLINE_COLOURS = ((90, 90, 90), (140, 86, 75), (227, 119, 194), (127, 127, 127))  # dashed reference lines, in order
TARGET_COLOUR = (214, 39, 40)  # for a target line: pass it in hline_colours
MIN_SIZE = (200, 150)  # (width, height) pixels below which nothing legible fits
_GRID, _AXIS, _TEXT = (232, 232, 232), (0, 0, 0), (20, 20, 20)


def _font(px: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=px)  # scalable (Pillow >= 10.1 with FreeType)
    except (TypeError, AttributeError, OSError):
        return ImageFont.load_default()


def _text_size(draw, text: str, font) -> tuple[int, int]:
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    return right - left, bottom - top


def _ticks(lo: float, hi: float, *, count: int = 5) -> tuple[np.ndarray, int]:
    """Round tick values (1, 2, 2.5 or 5 times a power of ten apart) covering [lo, hi] -> (ticks, decimals)."""
    if hi - lo <= 1e-12 * max(1.0, abs(lo), abs(hi)):  # one value: open a window around it
        pad = 0.1 * abs(lo) or 1.0
        lo, hi = lo - pad, hi + pad
    raw = (hi - lo) / count
    power = 10.0 ** math.floor(math.log10(raw))
    mult = next(m for m in (1.0, 2.0, 2.5, 5.0, 10.0) if m * power >= raw * (1 - 1e-9))
    step = mult * power
    first, last = math.floor(lo / step + 1e-9), math.ceil(hi / step - 1e-9)
    decimals = max(0, -math.floor(math.log10(step) + 1e-9) + (1 if mult == 2.5 else 0))
    return np.arange(first, last + 1) * step, decimals


def _clean_series(series: dict) -> dict[str, np.ndarray]:
    """{name: [(x, y), ...]} -> {name: (n, 2) float64 sorted by x}, non-finite points left out; a clear error
    for no series or a series without one finite point."""
    if not series:
        raise RegazeError("line_plot needs at least one series; got none")
    out = {}
    for name, points in series.items():
        pts = np.array([(float(x), float(y)) for x, y in points if x is not None and y is not None],
                       dtype=np.float64).reshape(-1, 2)
        pts = pts[np.isfinite(pts).all(1)]
        if not len(pts):
            raise RegazeError(f"line_plot: series {name!r} has no finite (x, y) point; got {list(points)!r}")
        out[str(name)] = pts[np.argsort(pts[:, 0], kind="stable")]
    return out


def _dashed(draw, x0: int, x1: int, y: int, *, colour, width: int, dash: int = 8, gap: int = 5) -> None:
    for start in range(x0, x1, dash + gap):
        draw.line([(start, y), (min(start + dash, x1), y)], fill=colour, width=width)


def _legend_rows(draw, entries: list, font, *, swatch: int, max_width: int) -> list[list]:
    """Legend entries (label, colour, dashed) packed into rows no wider than max_width."""
    rows, row, used = [], [], 0
    for entry in entries:
        w = swatch + 6 + _text_size(draw, entry[0], font)[0] + 18
        if row and used + w > max_width:
            rows.append(row)
            row, used = [], 0
        row.append((entry, w))
        used += w
    return rows + ([row] if row else [])


def line_plot(*, series: dict[str, list[tuple[float, float]]], x_label: str, y_label: str, title: str,
              hlines: dict[str, float] | None = None, hline_colours: dict[str, tuple[int, int, int]] | None = None,
              size: tuple[int, int] = (640, 400)) -> np.ndarray:
    """Draw `series` {name: [(x, y), ...]} as lines with point markers, one colour each (SERIES_COLOURS in
    order), and `hlines` {label: y} as dashed horizontal lines (HLINE_COLOURS in order, or hline_colours[label],
    e.g. TARGET_COLOUR) -> an (H, W, 3) uint8 RGB image of `size` = (W, H) pixels. Points with a None or
    non-finite coordinate are left out; a series with no point left, no series at all, a non-finite hline or a
    size below MIN_SIZE is a RegazeError."""
    from PIL import Image, ImageDraw

    width, height = (int(v) for v in size)
    if width < MIN_SIZE[0] or height < MIN_SIZE[1]:
        raise RegazeError(f"line_plot: size (width, height) must be at least {MIN_SIZE}; got {tuple(size)}")
    data = _clean_series(series)
    hlines = {str(k): float(v) for k, v in (hlines or {}).items() if v is not None}
    bad = {k: v for k, v in hlines.items() if not math.isfinite(v)}
    if bad:
        raise RegazeError(f"line_plot: horizontal lines must be finite; got {bad}")

    scale = min(width / 640, height / 400)
    font, title_font = _font(max(10, round(13 * scale))), _font(max(11, round(15 * scale)))
    lw, dash_w = max(1, round(3 * scale)), max(1, round(2 * scale))  # series, reference lines
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)

    # ---- value ranges: every point and every reference line is inside, padded, on round ticks
    xs = np.concatenate([p[:, 0] for p in data.values()])
    ys = np.concatenate([p[:, 1] for p in data.values()] + [np.array(list(hlines.values()), np.float64)])
    x_pad = 0.03 * (float(xs.max()) - float(xs.min()))  # markers at the ends stay off the frame
    x_ticks, x_dec = _ticks(float(xs.min()) - x_pad, float(xs.max()) + x_pad)
    y_pad = 0.04 * (float(ys.max()) - float(ys.min()))
    y_ticks, y_dec = _ticks(float(ys.min()) - y_pad, float(ys.max()) + y_pad)
    y_labels = [f"{v:.{y_dec}f}" for v in y_ticks]

    # ---- layout: title on top, y label and tick numbers left, tick numbers, x label and legend below
    text_h = _text_size(draw, "Hg0", font)[1]
    swatch = round(26 * scale)
    entries = [(name, SERIES_COLOURS[i % len(SERIES_COLOURS)], False) for i, name in enumerate(data)]
    cycle = 0  # the lines without a colour of their own take HLINE_COLOURS in turn
    for label, value in hlines.items():
        colour = (hline_colours or {}).get(label)
        if colour is None:
            colour, cycle = HLINE_COLOURS[cycle % len(HLINE_COLOURS)], cycle + 1
        entries.append((f"{label} ({value:.{y_dec + 1}f})", tuple(colour), True))
    left = 8 + text_h + 8 + max(_text_size(draw, s, font)[0] for s in y_labels) + 6
    legend = _legend_rows(draw, entries, font, swatch=swatch, max_width=width - left - 8)
    top = 8 + _text_size(draw, title, title_font)[1] + 10
    bottom = 6 + text_h + 8 + text_h + 14 + len(legend) * (text_h + 8)
    right = 16 + _text_size(draw, f"{x_ticks[-1]:.{x_dec}f}", font)[0] // 2
    x0, x1, y0, y1 = left, width - right, top, height - bottom  # the plot area, y0 at the top
    if x1 - x0 < 40 or y1 - y0 < 40:
        raise RegazeError(f"line_plot: {tuple(size)} leaves no room for the plot beside its labels and legend "
                          f"({len(entries)} entries); use a larger size")
    px = lambda x: x0 + (x - x_ticks[0]) / (x_ticks[-1] - x_ticks[0]) * (x1 - x0)  # noqa: E731
    py = lambda y: y1 - (y - y_ticks[0]) / (y_ticks[-1] - y_ticks[0]) * (y1 - y0)  # noqa: E731

    # ---- grid, axes, tick numbers, labels
    for v, s in zip(y_ticks, y_labels):
        y = round(py(v))
        draw.line([(x0, y), (x1, y)], fill=_GRID, width=1)
        draw.line([(x0 - 4, y), (x0, y)], fill=_AXIS, width=1)
        tw, th = _text_size(draw, s, font)
        draw.text((x0 - 6 - tw, y - th // 2), s, fill=_TEXT, font=font)
    for v in x_ticks:
        x, s = round(px(v)), f"{v:.{x_dec}f}"
        draw.line([(x, y0), (x, y1)], fill=_GRID, width=1)
        draw.line([(x, y1), (x, y1 + 4)], fill=_AXIS, width=1)
        draw.text((x - _text_size(draw, s, font)[0] // 2, y1 + 6), s, fill=_TEXT, font=font)
    draw.rectangle([x0, y0, x1, y1], outline=_AXIS, width=1)
    draw.text(((x0 + x1 - _text_size(draw, x_label, font)[0]) // 2, y1 + 6 + text_h + 8), x_label, fill=_TEXT, font=font)
    draw.text(((width - _text_size(draw, title, title_font)[0]) // 2, 8), title, fill=_TEXT, font=title_font)
    label_w, label_h = _text_size(draw, y_label, font)
    rotated = Image.new("RGB", (label_w + 4, label_h + 6), "white")
    ImageDraw.Draw(rotated).text((2, 0), y_label, fill=_TEXT, font=font)
    rotated = rotated.rotate(90, expand=True)
    image.paste(rotated, (8, max(0, (y0 + y1 - rotated.height) // 2)))

    # ---- reference lines under the data, then the series with their markers
    for (label, value), (_, colour, _) in zip(hlines.items(), entries[len(data):]):
        _dashed(draw, x0 + 1, x1 - 1, round(py(value)), colour=colour, width=dash_w)
    radius = max(2, round(3.5 * scale))
    for (name, pts), (_, colour, _) in zip(data.items(), entries):
        xy = [(px(x), py(y)) for x, y in pts]
        if len(xy) > 1:
            draw.line(xy, fill=colour, width=lw, joint="curve")
        for x, y in xy:
            draw.ellipse([x - radius, y - radius, x + radius, y + radius], fill=colour)

    # ---- legend: a swatch (solid with a marker, or dashed) and the label, rows under the x label
    y = y1 + 6 + 2 * (text_h + 8) + 4
    for row in legend:
        x = x0
        for (label, colour, dashed), w in row:
            mid = y + text_h // 2 + 1
            if dashed:
                _dashed(draw, x, x + swatch, mid, colour=colour, width=dash_w, dash=6, gap=4)
            else:
                draw.line([(x, mid), (x + swatch, mid)], fill=colour, width=lw)
                draw.ellipse([x + swatch / 2 - radius, mid - radius, x + swatch / 2 + radius, mid + radius], fill=colour)
            draw.text((x + swatch + 6, y), label, fill=_TEXT, font=font)
            x += w
        y += text_h + 8
    return np.asarray(image, dtype=np.uint8).copy()


def text_panel(*, title: str, text: str, size: tuple[int, int] = (640, 400)) -> np.ndarray:
    """A panel with a title and a centred line of text (e.g. "not measured") -> (H, W, 3) uint8, for a grid
    of plots where one quantity has no data."""
    from PIL import Image, ImageDraw

    width, height = (int(v) for v in size)
    scale = min(width / 640, height / 400)
    font, title_font = _font(max(10, round(13 * scale))), _font(max(11, round(15 * scale)))
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    draw.text(((width - _text_size(draw, title, title_font)[0]) // 2, 8), title, fill=_TEXT, font=title_font)
    tw, th = _text_size(draw, text, font)
    draw.text(((width - tw) // 2, (height - th) // 2), text, fill=(120, 120, 120), font=font)
    return np.asarray(image, dtype=np.uint8).copy()
