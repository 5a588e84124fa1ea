#!/usr/bin/env bash
# Branch coverage of the ring parser (include/perfbuf/ring.h) by the seed
# corpus alone: builds the fuzz target with clang's source-based coverage in
# build-cov/, replays fuzz/corpus/ring_parser once, prints each branch of
# ring.h with how often it went each way (summed over the parser's
# instantiations), and fails if a way is never taken.
set -euo pipefail
cd "$(dirname "$0")/.."
CC=clang CXX=clang++ cmake -S . -B build-cov -DPERFBUF_FUZZ=ON -DCMAKE_BUILD_TYPE=Debug \
  -DCMAKE_CXX_FLAGS="-fprofile-instr-generate -fcoverage-mapping" >/dev/null
cmake --build build-cov -j"$(nproc)"
cd build-cov
rm -f ring.profraw
LLVM_PROFILE_FILE=ring.profraw ./fuzz/ring_parser_fuzz -runs=0 ../fuzz/corpus/ring_parser \
  2>/dev/null
llvm-profdata merge -o ring.profdata ring.profraw
llvm-cov export ./fuzz/ring_parser_fuzz -instr-profile=ring.profdata ../include/perfbuf/ring.h \
  >ring_coverage.json
python3 - ../include/perfbuf/ring.h ring_coverage.json <<'PY'
import json, sys
source = open(sys.argv[1]).read().splitlines()
ways = {}  # (line, column) -> [taken, not taken]
for branch in json.load(open(sys.argv[2]))["data"][0]["files"][0]["branches"]:
    line, col, taken, not_taken = branch[0], branch[1], branch[4], branch[5]
    total = ways.setdefault((line, col), [0, 0])
    total[0] += taken
    total[1] += not_taken
missed = 0
print(f"{'line':>5} {'true':>6} {'false':>6}  condition")
for (line, col), (taken, not_taken) in sorted(ways.items()):
    missed += (taken == 0) + (not_taken == 0)
    print(f"{line:>5} {taken:>6} {not_taken:>6}  {source[line - 1].strip()[:90]}")
print(f"coverage: {len(ways)} branches in ring.h, {missed} ways taken by no seed")
sys.exit(1 if missed or not ways else 0)
PY
