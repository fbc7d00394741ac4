#!/usr/bin/env python3
"""SVG plots of bench/privacy_utility --json: p95 absolute error vs subjects (log-log), one panel
per metric, one line per mechanism and epsilon (single partner). Also prints issue 12's targets
per mechanism: at 100k subjects, eps 1, p95 error <= 0.01 (FNMR@FMR 1e-3), 0.005 (EER), 0.001
(ROC AUC); and at >= 20k subjects, wherever baseline's p95 > 0.005, at most a third of it.

  build/bench/privacy_utility --json > pu.json && scripts/privacy_utility_plot.py pu.json OUT.svg
"""
import json, math, sys

rows = json.load(open(sys.argv[1]))["rows"]
metrics = ["roc_auc", "eer", "fnmr_at_fmr_1e-2", "fnmr_at_fmr_1e-3"]
colours = {"baseline": "#c0392b", "current": "#2c3e50", "candidate": "#27ae60"}
dashes = ["", "6,3", "2,2", "8,2,2,2", "1,4"]
subjects = sorted({r["subjects"] for r in rows})
epsilons = sorted({r["epsilon"] for r in rows})
W, H, M = 360, 260, 50
out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{2 * W}" height="{2 * H + 40}" '
       'font-family="sans-serif" font-size="10">']
for n, metric in enumerate(metrics):
    ox, oy = (n % 2) * W, (n // 2) * H
    lo, hi = 1e-5, 1.0
    x = lambda s: ox + M + (math.log10(s) - math.log10(subjects[0])) / max(
        1e-9, math.log10(subjects[-1]) - math.log10(subjects[0])) * (W - 1.5 * M)
    y = lambda e: oy + 20 + (math.log10(hi) - math.log10(max(lo, e))) / (
        math.log10(hi) - math.log10(lo)) * (H - M - 20)
    out.append(f'<text x="{ox + M}" y="{oy + 14}" font-weight="bold">{metric}: p95 |error|, 1 partner</text>')
    out.append(f'<rect x="{ox + M}" y="{oy + 20}" width="{W - 1.5 * M}" height="{H - M - 20}" '
               'fill="none" stroke="#999"/>')
    for e in [1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1]:
        out.append(f'<text x="{ox + 5}" y="{y(e) + 3:.1f}">{e:g}</text>')
    for s in subjects:
        out.append(f'<text x="{x(s) - 10:.1f}" y="{oy + H - M + 14}">{s:g}</text>')
    for mech, colour in colours.items():
        for k, eps in enumerate(epsilons):
            pts = [(r["subjects"], r["abs_error_p95"]) for r in rows
                   if r["metric"] == metric and r["mechanism"] == mech and r["epsilon"] == eps
                   and r["partners"] == 1 and r["abs_error_p95"] is not None]
            if not pts:
                continue
            path = " ".join(f"{x(s):.1f},{y(e):.1f}" for s, e in sorted(pts))
            out.append(f'<polyline points="{path}" fill="none" stroke="{colour}" '
                       f'stroke-dasharray="{dashes[k % len(dashes)]}"/>')
legend = "  ".join(f"{m} ({c})" for m, c in colours.items())
styles = ", ".join(f"eps {e:g}: {'solid' if not dashes[k % 5] else dashes[k % 5]}"
                   for k, e in enumerate(epsilons))
out.append(f'<text x="10" y="{2 * H + 15}">colour = mechanism: {legend}</text>')
out.append(f'<text x="10" y="{2 * H + 30}">dash = epsilon: {styles}</text>')
out.append("</svg>")
open(sys.argv[2], "w").write("\n".join(out) + "\n")

idx = {(r["mechanism"], r["subjects"], r["partners"], r["epsilon"], r["metric"]): r for r in rows}
for mech in ("current", "candidate"):
    t = [idx.get((mech, 100000, 1, 1, m)) for m in ("fnmr_at_fmr_1e-3", "eer", "roc_auc")]
    if all(t):
        print(f"{mech}: 100k subjects, eps 1, p95 |error|: fnmr@fmr1e-3 {t[0]['abs_error_p95']:.4g}"
              f" (target 0.01), eer {t[1]['abs_error_p95']:.4g} (0.005),"
              f" roc_auc {t[2]['abs_error_p95']:.4g} (0.001)")
    points, failed = 0, []
    for k, b in idx.items():
        if k[0] != "baseline" or k[1] < 20000 or (b["abs_error_p95"] or 0) <= 0.005:
            continue
        c = idx.get((mech,) + k[1:])
        if c is None:
            continue
        points += 1
        if c["abs_error_p95"] is None or c["abs_error_p95"] > b["abs_error_p95"] / 3:
            failed.append(f"{k[1:]}: baseline {b['abs_error_p95']:.4g}, {mech} {c['abs_error_p95']}")
    print(f"{mech}: a third of baseline where baseline > 0.005 at >= 20k: {points - len(failed)}"
          f" of {points} points")
    for f in failed:
        print("  not met", f)
