#!/usr/bin/env python3
"""Draws the benchmark charts from docs/bench/results/*.json into docs/bench/*.svg.

Standard library only: the SVG is written by hand. Run after docs/bench/sweep.sh:

    python3 docs/bench/chart.py
"""

import glob
import json
import math
import os
from xml.sax.saxutils import escape

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, "results")

WIDTH, HEIGHT = 640, 380
LEFT, RIGHT, TOP, BOTTOM = 78, 24, 44, 56
COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd"]


def load():
    runs = []
    for path in sorted(glob.glob(os.path.join(RESULTS, "*.json"))):
        with open(path, encoding="utf-8") as f:
            runs.append(json.load(f))
    return runs


def nice_ticks(lo, hi, count=5):
    """Round tick values covering [lo, hi]."""
    if hi <= lo:
        hi = lo + 1
    raw = (hi - lo) / count
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.floor(lo / step) * step
    ticks = []
    t = first
    while t <= hi + step * 0.5:
        ticks.append(round(t, 10))
        t += step
    return ticks


def log_ticks(lo, hi):
    ticks = []
    e = math.floor(math.log10(lo))
    while 10**e <= hi * 10:
        for m in (1, 2, 5):
            v = m * 10**e
            if lo / 1.01 <= v <= hi * 1.01:
                ticks.append(v)
        e += 1
    return ticks


def fmt(v):
    if v == 0:
        return "0"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    if abs(v) >= 1:
        return f"{v:g}"
    return f"{v:.3g}"


def chart(path, title, xlabel, ylabel, series, targets=(), log_y=False):
    """series: [(name, [(x, y)])]; targets: [(name, y)] drawn as dashed lines."""
    xs = [x for _, pts in series for x, _ in pts]
    ys = [y for _, pts in series for _, y in pts if y is not None] + [y for _, y in targets]
    if not xs or not ys:
        print(f"skip {path}: no data")
        return
    x_ticks = nice_ticks(0, max(xs))
    x_lo, x_hi = 0, x_ticks[-1]
    if log_y:
        y_lo = 10 ** math.floor(math.log10(max(min(y for y in ys if y > 0), 1e-3)))
        y_hi = 10 ** math.ceil(math.log10(max(ys)))
        y_ticks = log_ticks(y_lo, y_hi)

        def ty(v):
            v = max(v, y_lo)
            return TOP + (HEIGHT - TOP - BOTTOM) * (
                1 - (math.log10(v) - math.log10(y_lo)) / (math.log10(y_hi) - math.log10(y_lo))
            )
    else:
        y_ticks = nice_ticks(0, max(ys) * 1.05)
        y_lo, y_hi = 0, y_ticks[-1]

        def ty(v):
            return TOP + (HEIGHT - TOP - BOTTOM) * (1 - (v - y_lo) / (y_hi - y_lo))

    def tx(v):
        return LEFT + (WIDTH - LEFT - RIGHT) * (v - x_lo) / (x_hi - x_lo)

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">',
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>',
        f'<text x="{WIDTH / 2}" y="22" text-anchor="middle" font-size="15" '
        f'font-weight="bold">{escape(title)}</text>',
    ]
    for t in y_ticks:
        y = ty(t)
        out.append(
            f'<line x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}" stroke="#e5e5e5"/>'
        )
        out.append(
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{fmt(t)}</text>'
        )
    for t in x_ticks:
        x = tx(t)
        out.append(
            f'<line x1="{x:.1f}" y1="{TOP}" x2="{x:.1f}" y2="{HEIGHT - BOTTOM}" stroke="#f0f0f0"/>'
        )
        out.append(
            f'<text x="{x:.1f}" y="{HEIGHT - BOTTOM + 18}" text-anchor="middle">{fmt(t)}</text>'
        )
    out.append(
        f'<rect x="{LEFT}" y="{TOP}" width="{WIDTH - LEFT - RIGHT}" '
        f'height="{HEIGHT - TOP - BOTTOM}" fill="none" stroke="#333"/>'
    )
    out.append(
        f'<text x="{(LEFT + WIDTH - RIGHT) / 2}" y="{HEIGHT - 14}" '
        f'text-anchor="middle">{escape(xlabel)}</text>'
    )
    out.append(
        f'<text transform="translate(18,{(TOP + HEIGHT - BOTTOM) / 2}) rotate(-90)" '
        f'text-anchor="middle">{escape(ylabel)}</text>'
    )
    legend = []
    for i, (name, y) in enumerate(targets):
        yy = ty(y)
        out.append(
            f'<line x1="{LEFT}" y1="{yy:.1f}" x2="{WIDTH - RIGHT}" y2="{yy:.1f}" '
            f'stroke="#888" stroke-dasharray="6 4"/>'
        )
        out.append(
            f'<text x="{WIDTH - RIGHT - 4}" y="{yy - 4:.1f}" text-anchor="end" '
            f'fill="#555">{escape(name)}</text>'
        )
    for i, (name, pts) in enumerate(series):
        color = COLORS[i % len(COLORS)]
        pts = sorted((x, y) for x, y in pts if y is not None)
        if not pts:
            continue
        d = " ".join(f"{tx(x):.1f},{ty(y):.1f}" for x, y in pts)
        out.append(f'<polyline points="{d}" fill="none" stroke="{color}" stroke-width="2"/>')
        for x, y in pts:
            out.append(
                f'<circle cx="{tx(x):.1f}" cy="{ty(y):.1f}" r="3.5" fill="{color}">'
                f"<title>{escape(name)}: {fmt(x)} → {fmt(y)}</title></circle>"
            )
        legend.append((name, color))
    for i, (name, color) in enumerate(legend):
        y = TOP + 16 + i * 18
        out.append(
            f'<rect x="{LEFT + 10}" y="{y - 9}" width="14" height="4" fill="{color}"/>'
        )
        out.append(f'<text x="{LEFT + 30}" y="{y - 3}">{escape(name)}</text>')
    out.append("</svg>")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(out) + "\n")
    print(f"wrote {os.path.relpath(path)}")


def main():
    runs = load()
    rate = [r for r in runs if r["mode"] == "fixed_rate" and r["config"]["polls"] > 0]
    thr = [r for r in runs if r["mode"] == "throughput"]

    def lat(r, key):
        h = r["results"]["delivery_latency"]
        return h[key] if h else None

    chart(
        os.path.join(HERE, "latency_vs_polls.svg"),
        "Delivery latency at 1,000 messages/s",
        "parked long polls",
        "delivery latency, ms (log scale)",
        [
            ("p50", [(r["config"]["polls"], lat(r, "p50_ms")) for r in rate]),
            ("p99", [(r["config"]["polls"], lat(r, "p99_ms")) for r in rate]),
        ],
        targets=[("target p50 0.5 ms", 0.5), ("target p99 2 ms", 2.0)],
        log_y=True,
    )
    chart(
        os.path.join(HERE, "rss_per_poll.svg"),
        "Server memory per parked poll",
        "parked long polls",
        "RSS per parked poll, KB",
        [
            (
                "RSS / poll",
                [
                    (r["config"]["polls"], r["server"]["rss_per_poll_bytes"] / 1000)
                    for r in rate
                    if r["server"]["rss_per_poll_bytes"] is not None
                ],
            )
        ],
        targets=[("target 12 KB", 12.0)],
    )
    chart(
        os.path.join(HERE, "throughput_vs_senders.svg"),
        "Durable sends per second (1,000 parked polls)",
        "concurrent senders",
        "acknowledged sends/s",
        [("sends/s", [(r["config"]["senders"], r["results"]["acked_per_s"]) for r in thr])],
        targets=[("target 18,000/s", 18000)],
    )


if __name__ == "__main__":
    main()
