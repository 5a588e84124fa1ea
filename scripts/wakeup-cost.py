#!/usr/bin/env python3
"""What one wakeup of a reader costs in user space, counted by callgrind, so
that two builds (or perfbuf and libbpf) compare without the host's noise.

    scripts/wakeup-cost.py                       # perfbuf and libbpf-perfbuf
    scripts/wakeup-cost.py --consumers perfbuf --perfbuf old-build/tools/perfbuf

Runs `perfbuf bench --producers 1 --rate 1000` under callgrind, counting only
inside the reader's poll call (Reader::poll, perf_buffer__poll or
ring_buffer__poll), with caches of 1 KiB (16 lines, fully associative) so
that a line the path touches is counted as it would be after a long sleep,
when the caches are cold. Prints
per wakeup: instructions, instruction- and data-cache lines missed, and the
code pages whose instructions run at every wakeup (the TLB entries a wakeup
needs). At 1,000/s each wakeup hands out one record, and the bench's own
handler is counted in every row alike. A wakeup is a call of epoll_wait,
epoll_pwait or epoll_pwait2 (valgrind does not know epoll_pwait2: the loop
falls back to epoll_pwait under it).
"""
import argparse
import collections
import os
import re
import shutil
import subprocess
import sys
import tempfile

POLL_OF = {
    "libbpf-perfbuf": "perf_buffer__poll",
    "libbpf-perfbuf-tuned": "perf_buffer__poll",
    "libbpf-ringbuf": "ring_buffer__poll",
}
PERFBUF_POLL = "perfbuf::Reader::poll(std::chrono::duration<long, std::ratio<1l, 1000l> >)"
WAITS = ("epoll_wait", "epoll_pwait", "epoll_pwait2")
ADDRESS = re.compile(r"(0x[0-9a-f]+|[+-]\d+|\*)$")


def run_callgrind(perfbuf, consumer, out, seconds):
    cmd = ["valgrind", "--tool=callgrind", "--cache-sim=yes", "--dump-instr=yes",
           # 16 lines each, fully associative: a line is missed for being
           # far back, not for where it happens to sit (so that moving code
           # or data around does not move the figures by itself)
           "--I1=1024,16,64", "--D1=1024,16,64", "--LL=8192,16,64",
           f"--callgrind-out-file={out}",
           f"--toggle-collect={POLL_OF.get(consumer, PERFBUF_POLL)}",
           perfbuf, "bench", "--producers", "1", "--rate", "1000",
           "--duration", str(seconds), "--rounds", "1", "--consumers", consumer]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"wakeup-cost: {' '.join(cmd)} failed:\n{done.stderr[-2000:]}")


def per_wakeup(path):
    """Totals of each event, the wakeups, and the code pages run every wakeup."""
    names = {"ob": {}, "fn": {}}
    events, totals = [], []
    obj, callee, skip_call_cost, address = "", "", False, 0
    waits = 0
    by_page = collections.Counter()
    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if line.startswith("events:"):
                events = line.split()[1:]
                continue
            if line.startswith("summary:") or line.startswith("totals:"):
                totals = [int(v) for v in line.split()[1:]]
                continue
            m = re.match(r"(c?)(ob|fn)=\((\d+)\)(?: (.*))?", line)
            if m:
                called, kind, key, name = m.groups()
                if name:
                    names[kind][key] = name
                if kind == "ob" and not called:
                    obj = names["ob"][key]
                if kind == "fn":
                    callee = names["fn"].get(key, "") if called else ""
                continue
            m = re.match(r"calls=(\d+)", line)
            if m:
                if callee in WAITS:
                    waits += int(m.group(1))
                skip_call_cost = True  # the next line is the call's inclusive cost
                continue
            parts = line.split()
            if len(parts) >= 3 and ADDRESS.match(parts[0]):
                a = parts[0]
                address = int(a, 16) if a.startswith("0x") else address if a == "*" else address + int(a)
                if skip_call_cost:
                    skip_call_cost = False
                    continue
                by_page[(os.path.basename(obj), address >> 12)] += int(parts[2])
    if waits == 0:
        sys.exit(f"wakeup-cost: no wait counted in {path}")
    figures = dict(zip(events, totals))
    pages = sorted(p for p, ir in by_page.items() if ir >= waits)
    return figures, waits, pages


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--perfbuf", default="build/tools/perfbuf", help="the perfbuf binary")
    parser.add_argument("--consumers", default="perfbuf,libbpf-perfbuf",
                        help="bench consumers to count, comma-separated")
    parser.add_argument("--duration", type=float, default=3, help="seconds per consumer")
    parser.add_argument("--pages", action="store_true", help="list the code pages")
    args = parser.parse_args()
    if not shutil.which("valgrind"):
        sys.exit("wakeup-cost: valgrind not found; install it with `apt-get install valgrind` "
                 "(not in scripts/install-deps.sh: nothing in CI needs it)")
    if not os.access(args.perfbuf, os.X_OK):
        sys.exit(f"wakeup-cost: {args.perfbuf} is not an executable; build with scripts/build.sh "
                 "or name the binary with --perfbuf")
    print(f"{'consumer':24} {'wakeups':>8} {'instr':>7} {'I1 miss':>8} {'D1 miss':>8} {'code pages':>10}")
    with tempfile.TemporaryDirectory() as tmp:
        for consumer in args.consumers.split(","):
            out = os.path.join(tmp, consumer + ".out")
            run_callgrind(args.perfbuf, consumer, out, args.duration)
            f, waits, pages = per_wakeup(out)
            data_missed = f.get("D1mr", 0) + f.get("D1mw", 0)
            print(f"{consumer:24} {waits:8} {f['Ir'] / waits:7.0f} {f.get('I1mr', 0) / waits:8.1f} "
                  f"{data_missed / waits:8.1f} {len(pages):10}")
            if args.pages:
                for lib, page in pages:
                    print(f"    {lib} {page << 12:#x}")


if __name__ == "__main__":
    main()
