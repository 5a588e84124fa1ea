#!/usr/bin/env python3
"""Draws a `perfbuf bench --rate ... --json` sweep: p99 delivery delay and
consumer CPU against the producer's rate, one line per consumer, log scales.

    build/tools/perfbuf bench --producers 1 --rate 0,100,1000,10000,100000,max \\
        --rounds 1 --json > rate.jsonl
    scripts/plot-rate.py rate.jsonl -o docs/bench-rate.png

Paced rows are placed at the rate they asked for; the unpaced (`max`) row of a
consumer at the rate it achieved, marked with a circle. Rate 0 (idle) has no
place on a log scale: its CPU figures are printed instead. Draws with gnuplot
(package gnuplot-nox, already needed by `perfbuf bench --plot`).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile


COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22", "#17becf", "#000000", "#aec7e8"]


def load(paths):
    rows = []
    for path in paths or ["-"]:
        f = sys.stdin if path == "-" else open(path)
        for line in f:
            line = line.strip()
            if line.startswith("{"):
                rows.append(json.loads(line))
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("files", nargs="*", help="JSON lines of perfbuf bench (default: stdin)")
    ap.add_argument("-o", "--output", default="bench-rate.png", help="PNG to write")
    ap.add_argument("--producers", type=int, help="which producer count (default: the smallest)")
    ap.add_argument("--size", type=int, help="which record size (default: the smallest)")
    args = ap.parse_args()

    rows = [r for r in load(args.files) if "rate" in r]
    if not rows:
        sys.exit("plot-rate: no rows with a rate: run perfbuf bench --rate ... --json")
    producers = args.producers or min(r["producers"] for r in rows)
    size = args.size or min(r["size"] for r in rows)
    rows = [r for r in rows if r["producers"] == producers and r["size"] == size]
    if not rows:
        sys.exit(f"plot-rate: no rows for {producers} producers and size {size}")

    consumers = list(dict.fromkeys(r["consumer"] for r in rows))  # in the bench's order
    with tempfile.TemporaryDirectory(prefix="perfbuf-plot-rate-") as tmp:
        paced_plots, max_plots = [], []
        for i, c in enumerate(consumers):
            paced = sorted((r for r in rows if r["consumer"] == c and r["rate"] != "max"
                            and r["rate"] > 0), key=lambda r: r["rate"])
            unpaced = [r for r in rows if r["consumer"] == c and r["rate"] == "max"
                       and r["achieved_rate"] > 0]
            for r in rows:
                if r["consumer"] == c and r["rate"] == 0:
                    print(f"{c}: idle (rate 0) consumer CPU {r['consumer_cpu_pct']:.3f}% of a core")
            for name, subset, store in (("paced", paced, paced_plots), ("max", unpaced, max_plots)):
                if not subset:
                    continue
                data = os.path.join(tmp, f"{i}-{name}.txt")
                with open(data, "w") as out:
                    for r in subset:
                        x = r["achieved_rate"] if name == "max" else r["rate"]
                        # Log scales have no 0: a value below the axis is drawn at its floor.
                        out.write(f"{x} {max(r['latency_p99_us'], 0.1)} "
                                  f"{max(r['consumer_cpu_pct'], 0.001)}\n")
                store.append((i, c, data))

        def style(i):  # a colour and a point per consumer: gnuplot's own colours repeat after 8
            return f"lc rgb '{COLOURS[i % len(COLOURS)]}' dt {1 + i // len(COLOURS)}"

        def plot_line(column):
            parts = []
            for i, c, data in paced_plots:
                parts.append(f"'{data}' using 1:{column} with linespoints {style(i)} pt 7 "
                             f"title '{c}'")
            for i, c, data in max_plots:
                parts.append(f"'{data}' using 1:{column} with points {style(i)} pt 6 ps 2 "
                             f"notitle")
            return "plot " + ", ".join(parts) + "\n"

        script = os.path.join(tmp, "plot.gp")
        with open(script, "w") as gp:
            gp.write("set terminal pngcairo size 1100,900 font ',10'\n"
                     f"set output '{os.path.abspath(args.output)}'\n"
                     f"set multiplot layout 2,1 title 'perfbuf bench --rate: {producers} producer"
                     f"{'s' if producers > 1 else ''}, {size}-byte records "
                     "(open circles: unpaced, at the rate reached)'\n"
                     "set logscale xy\nset grid xtics ytics mxtics mytics\n"
                     "set key outside right top\nset format x '10^{%L}'\n"
                     "set xlabel 'records/s per producer'\n"
                     "set ylabel 'p99 delivery delay (us)'\n")
            gp.write(plot_line(2))
            gp.write("set ylabel 'consumer CPU (% of a core)'\n")
            gp.write(plot_line(3))
            gp.write("unset multiplot\n")
        rc = subprocess.run(["gnuplot", script]).returncode
        if rc != 0:
            sys.exit(f"plot-rate: gnuplot failed (exit {rc}); install it with "
                     "scripts/install-deps.sh (package gnuplot-nox)")
    print(f"plot written to {args.output}")


if __name__ == "__main__":
    main()
