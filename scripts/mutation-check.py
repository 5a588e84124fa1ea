#!/usr/bin/env python3
"""Mutation check: does the test suite catch each promise the code makes?

Every `mutations.toml` tracked in the repository lists small changes to the
code beside it, each naming the promise it breaks:

    [[mutation]]
    name = "flush-late"                      # unique, kebab-case
    promise = "a record reaches its handler within max_delay"
    file = "src/poller.cpp"                  # from the repository root
    find = "last_flush_ + options_.max_delay"  # must occur exactly once
    replace = "last_flush_ + 50 * options_.max_delay"
    tests = "ReaderKernel"                   # optional: ctest -R regex to run

The check copies the tracked tree into build-mutants/, builds it once and runs
the suite unchanged (it must pass), then applies each mutation alone,
rebuilds, runs the suite (or `tests`) and restores the file. A mutation that
no test catches "survives" and fails the check; so does one whose text is no
longer found (update it with the code) or that no longer compiles.

    scripts/mutation-check.py              # all of them (CI)
    scripts/mutation-check.py --list       # what is covered
    scripts/mutation-check.py NAME...      # only these
"""
import argparse
import os
import shutil
import subprocess
import sys
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "build-mutants"
TREE = WORK / "tree"
BUILD = WORK / "build"
# Each mutant's suite gets this long per test: a mutant that makes a test hang
# is caught by the timeout instead of stalling the check.
TEST_TIMEOUT_S = 30


def load_mutations():
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard",
                            "*mutations.toml"], cwd=ROOT, check=True,
                           capture_output=True, text=True).stdout.split()
    mutations, errors = [], []
    for f in files:
        with open(ROOT / f, "rb") as fh:
            for m in tomllib.load(fh).get("mutation", []):
                m["listed_in"] = f
                missing = [k for k in ("name", "promise", "file", "find", "replace") if k not in m]
                if missing:
                    errors.append(f"{f}: mutation {m.get('name', '?')} lacks {', '.join(missing)}")
                    continue
                mutations.append(m)
    names = [m["name"] for m in mutations]
    for n in sorted({n for n in names if names.count(n) > 1}):
        errors.append(f"mutation name {n} is used twice")
    for m in mutations:
        path = ROOT / m["file"]
        if not path.is_file():
            errors.append(f"{m['listed_in']}: {m['name']}: no file {m['file']}")
            continue
        count = path.read_text().count(m["find"])
        if count != 1:
            errors.append(f"{m['listed_in']}: {m['name']}: the text to find occurs {count} times "
                          f"in {m['file']} (must be exactly once): update the mutation with the code")
        elif m["find"] == m["replace"]:
            errors.append(f"{m['listed_in']}: {m['name']}: replace is the same as find")
    return mutations, errors


def run(cmd, log, timeout=None):
    with open(log, "a") as out:
        out.write(f"\n$ {' '.join(map(str, cmd))}\n")
        out.flush()
        try:
            return subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT,
                                  timeout=timeout).returncode
        except subprocess.TimeoutExpired:
            out.write(f"timed out after {timeout} s\n")
            return 124


def copy_tree():
    """The tracked files, as they are in the working tree, into TREE.
    Unchanged files keep their times, so a second run rebuilds little; a
    changed one gets the time of the copy (not its source's, which may be
    older than an object built from the previous copy)."""
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                           cwd=ROOT, check=True, capture_output=True).stdout.split(b"\0")
    wanted = set()
    for raw in files:
        if not raw:
            continue
        rel = raw.decode()
        src, dst = ROOT / rel, TREE / rel
        if not src.is_file():
            continue
        wanted.add(dst)
        if dst.is_file() and dst.read_bytes() == src.read_bytes():
            continue
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(src, dst)
    for dst in [p for p in TREE.rglob("*") if p.is_file()]:
        if dst not in wanted:
            dst.unlink()


def ctest(log, regex=None):
    cmd = ["ctest", "--test-dir", BUILD, "-j2", "--output-on-failure", "--stop-on-failure"]
    if regex:
        cmd += ["-R", regex]
    return run(cmd, log)


def failed_tests(log):
    """The names ctest printed as failed in the last run of the log."""
    text = Path(log).read_text()
    last = text[text.rfind("$ ctest"):]
    # ctest's closing list: "\t 12 - Suite.Name (Failed)"
    names = []
    for line in last.splitlines():
        line = line.strip()
        if " - " in line and line.endswith(")") and line[0].isdigit():
            names.append(line.split(" - ", 1)[1].rsplit(" (", 1)[0])
    return names


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("names", nargs="*", help="run only these mutations")
    ap.add_argument("--list", action="store_true", help="list the mutations and exit")
    args = ap.parse_args()

    mutations, errors = load_mutations()
    if errors:
        for e in errors:
            print(f"mutation-check: {e}", file=sys.stderr)
        return 1
    if args.names:
        unknown = set(args.names) - {m["name"] for m in mutations}
        if unknown:
            print(f"mutation-check: no mutation named {', '.join(sorted(unknown))} "
                  f"(see --list)", file=sys.stderr)
            return 2
        mutations = [m for m in mutations if m["name"] in args.names]
    if args.list:
        for m in mutations:
            print(f"{m['name']:32} {m['file']:34} {m['promise']}")
        print(f"{len(mutations)} mutations")
        return 0

    os.environ["CI"] = "true"  # kernel tests fail instead of skipping: a skip catches nothing
    start = time.monotonic()
    WORK.mkdir(exist_ok=True)
    copy_tree()
    log = WORK / "log.txt"
    log.write_text("")
    # -O1 without debug info: the same code paths, built in about half the time.
    if run(["cmake", "-S", TREE, "-B", BUILD, "-G", "Ninja", "-DCMAKE_BUILD_TYPE=None",
            "-DCMAKE_C_FLAGS=-O1", "-DCMAKE_CXX_FLAGS=-O1",
            f"-DPERFBUF_TEST_TIMEOUT={TEST_TIMEOUT_S}"], log) != 0 \
            or run(["cmake", "--build", BUILD], log) != 0:
        print(f"mutation-check: the unmutated tree does not build; see {log}", file=sys.stderr)
        return 1
    if ctest(log) != 0:
        print(f"mutation-check: the unmutated suite fails ({', '.join(failed_tests(log))}); "
              f"fix that first; see {log}", file=sys.stderr)
        return 1
    print(f"mutation-check: unmutated tree builds and passes "
          f"({time.monotonic() - start:.0f} s); {len(mutations)} mutations")

    survived, broken = [], []
    # Grouped by file: restoring one file and mutating the next rebuilds the least.
    for m in sorted(mutations, key=lambda m: m["file"]):
        t0 = time.monotonic()
        path = TREE / m["file"]
        original = path.read_text()
        path.write_text(original.replace(m["find"], m["replace"], 1))
        try:
            if run(["cmake", "--build", BUILD], log) != 0:
                verdict = "DOES NOT BUILD"
                broken.append(m)
            elif ctest(log, m.get("tests")) == 0:
                verdict = "SURVIVED"
                survived.append(m)
            else:
                verdict = "caught by " + (", ".join(failed_tests(log)[:2]) or "the suite")
        finally:
            path.write_text(original)
        print(f"  {m['name']:32} {time.monotonic() - t0:5.0f} s  {verdict}", flush=True)
        if verdict == "SURVIVED" or verdict == "DOES NOT BUILD":
            print(f"      promise: {m['promise']}\n      {m['file']}: {m['find']!r} -> "
                  f"{m['replace']!r}", flush=True)

    # Leave the build matching the unmutated tree for the next run.
    run(["cmake", "--build", BUILD], log)
    total = time.monotonic() - start
    caught = len(mutations) - len(survived) - len(broken)
    print(f"mutation-check: {caught} of {len(mutations)} mutations caught, {len(survived)} "
          f"survived, {len(broken)} do not build ({total:.0f} s; log: {log})")
    return 0 if not survived and not broken else 1


if __name__ == "__main__":
    sys.exit(main())
