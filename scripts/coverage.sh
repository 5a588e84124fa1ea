#!/usr/bin/env bash
# Branch coverage by the seed corpora alone: builds the fuzz targets with
# clang's source-based coverage in build-cov/, replays each committed corpus
# once through its target (fuzz/corpus/ring_parser through ring_parser_fuzz,
# fuzz/corpus/ringbuf_cursor through ringbuf_cursor_fuzz, fuzz/corpus/backward_ring
# through backward_ring_fuzz), prints each branch of the code under test
# (include/perfbuf/ring.h, include/perfbuf/ringbuf.h, include/perfbuf/backward_ring.h)
# with how often it went each way (summed over instantiations), and fails if
# a way is never taken.
set -euo pipefail
cd "$(dirname "$0")/.."
CC=clang CXX=clang++ cmake -S . -B build-cov -DPERFBUF_FUZZ=ON -DCMAKE_BUILD_TYPE=Debug \
  -DCMAKE_CXX_FLAGS="-fprofile-instr-generate -fcoverage-mapping" >/dev/null
cmake --build build-cov -j"$(nproc)"
cd build-cov
status=0
for pair in ring_parser:ring.h ringbuf_cursor:ringbuf.h backward_ring:backward_ring.h; do
  name="${pair%%:*}" header="../include/perfbuf/${pair#*:}"
  rm -f "$name.profraw"
  LLVM_PROFILE_FILE="$name.profraw" "./fuzz/${name}_fuzz" -runs=0 "../fuzz/corpus/$name" \
    2>/dev/null
  llvm-profdata merge -o "$name.profdata" "$name.profraw"
  llvm-cov export "./fuzz/${name}_fuzz" -instr-profile="$name.profdata" "$header" \
    >"${name}_coverage.json"
  python3 - "$header" "${name}_coverage.json" "$name" <<'PY' || status=1
import json, os, sys
header, report, name = sys.argv[1], sys.argv[2], sys.argv[3]
source = open(header).read().splitlines()
ways = {}  # (line, column) -> [taken, not taken]
for branch in json.load(open(report))["data"][0]["files"][0]["branches"]:
    line, col, taken, not_taken = branch[0], branch[1], branch[4], branch[5]
    total = ways.setdefault((line, col), [0, 0])
    total[0] += taken
    total[1] += not_taken
missed = 0
print(f"{name}: {os.path.basename(header)}")
print(f"{'line':>5} {'true':>6} {'false':>6}  condition")
for (line, col), (taken, not_taken) in sorted(ways.items()):
    missed += (taken == 0) + (not_taken == 0)
    print(f"{line:>5} {taken:>6} {not_taken:>6}  {source[line - 1].strip()[:90]}")
print(f"coverage: {len(ways)} branches in {os.path.basename(header)}, "
      f"{missed} ways taken by no seed of {name}")
sys.exit(1 if missed or not ways else 0)
PY
done
exit "$status"
