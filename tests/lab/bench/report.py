#!/usr/bin/env python3
"""Summarize the CSV tests/lab/bench.sh writes: min/median/p95/max per system and
metric, ratios against keepalived, and one SVG plot of the kill -> VIP distribution per
system (drawn here, no plotting library).

    report.py RESULTS.csv PLOT.svg [TITLE]
"""
import csv
import math
import sys
from collections import defaultdict

COLUMNS = ["system", "nodes", "round", "metric", "value", "unit"]


def pct(v, p):
    """Nearest-rank percentile of a sorted list."""
    return v[max(0, math.ceil(p / 100 * len(v)) - 1)]


def num(x):
    """Right-aligned in 9 columns; two decimals below 10."""
    return f"{x:>9.2f}" if abs(x) < 10 else f"{x:>9.1f}"


def median(v):
    n = len(v)
    return v[n // 2] if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2


def main():
    path, svg = sys.argv[1], sys.argv[2]
    title = sys.argv[3] if len(sys.argv) > 3 else ""
    data = defaultdict(list)
    units = {}
    with open(path, newline="") as f:
        r = csv.DictReader(f)
        if r.fieldnames != COLUMNS:
            sys.exit(f"{path}: columns {r.fieldnames}, expected {COLUMNS}")
        for row in r:
            key = (row["metric"], int(row["nodes"]), row["system"])
            data[key].append(float(row["value"]))
            units[key[0]] = row["unit"]
    medians = {}
    print(f"{'metric':<24} {'nodes':>5} {'system':<12} {'n':>3} {'min':>9} {'median':>9} {'p95':>9} {'max':>9}  unit")
    for key in sorted(data):
        v = sorted(data[key])
        m = median(v)
        medians[key] = m
        metric, nodes, system = key
        print(f"{metric:<24} {nodes:>5} {system:<12} {len(v):>3} {num(v[0])} {num(m)} "
              f"{num(pct(v, 95))} {num(v[-1])}  {units[metric]}")
    print("\nratios of medians against keepalived (below 1: hbd is ahead):")
    for (metric, nodes, system), m in sorted(medians.items()):
        ref = medians.get((metric, nodes, "keepalived"))
        if system == "keepalived" or ref is None:
            continue
        ratio = f"{m / ref:.2f}x" if ref else "n/a"
        print(f"  {metric:<24} {system:<12} {m:9.1f} vs {ref:9.1f}  {ratio}")
    plot(svg, title, {s: sorted(v) for (m, _, s), v in data.items() if m == "kill_vip_ms"})
    print(f"\nplot: {svg}")


def plot(path, title, series):
    systems = sorted(series)
    width, row, left, right, top = 760, 60, 130, 30, 50
    height = top + row * max(1, len(systems)) + 50
    values = [x for v in series.values() for x in v] or [0, 1]
    lo, hi = min(values), max(max(values), min(values) + 1)
    step = 10 ** math.floor(math.log10(hi - lo))
    for m in (0.1, 0.2, 0.5, 1, 2, 5, 10):
        if (hi - lo) / (step * m) <= 8:
            step *= m
            break
    xmin, xmax = step * math.floor(lo / step), step * math.ceil(hi / step)
    x = lambda ms: left + (width - left - right) * (ms - xmin) / (xmax - xmin)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'font-family="sans-serif" font-size="12">',
           f'<rect width="{width}" height="{height}" fill="white"/>',
           f'<text x="{width / 2}" y="20" text-anchor="middle" font-size="14">'
           f'kill -9 of the owner → VIP on the survivor (ms)</text>',
           f'<text x="{width / 2}" y="36" text-anchor="middle" fill="#555">{esc(title)}</text>']
    base = top + row * len(systems)
    t = xmin
    while t <= xmax + step / 2:
        out.append(f'<line x1="{x(t):.1f}" y1="{top}" x2="{x(t):.1f}" y2="{base}" stroke="#ddd"/>')
        out.append(f'<text x="{x(t):.1f}" y="{base + 16}" text-anchor="middle">{t:g}</text>')
        t += step
    colors = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e"]
    for i, s in enumerate(systems):
        v, y, c = series[s], top + row * i + row / 2, colors[i % len(colors)]
        out.append(f'<text x="{left - 10}" y="{y + 4}" text-anchor="end">{esc(s)}</text>')
        for j, ms in enumerate(v):
            dy = ((j * 7) % 21 - 10) * 1.2
            out.append(f'<circle cx="{x(ms):.1f}" cy="{y + dy:.1f}" r="3" fill="{c}" fill-opacity="0.6"/>')
        m = median(v)
        out.append(f'<line x1="{x(m):.1f}" y1="{y - 18}" x2="{x(m):.1f}" y2="{y + 18}" stroke="{c}" stroke-width="2"/>')
        out.append(f'<text x="{x(m) + 4:.1f}" y="{y - 20}" fill="{c}">median {m:.0f}</text>')
    out.append(f'<text x="{width / 2}" y="{height - 8}" text-anchor="middle" fill="#555">'
               f'dots: rounds; bar: median</text>')
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


def esc(s):
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


if __name__ == "__main__":
    main()
