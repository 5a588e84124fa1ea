#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan + UBSan) and fuzzes, one after
# the other, the perf ring parser (ring_parser_fuzz), the BPF ring buffer
# cursor (ringbuf_cursor_fuzz), perfbuf cat's BTF decoder (btf_decoder_fuzz)
# and the flight recorder's backward ring walk (backward_ring_fuzz), each for
# a quarter of SECONDS (default 60, so the
# whole run takes about as long as SECONDS) on top of its committed corpus in
# fuzz/corpus/<name>. New inputs go to build-fuzz/corpus/<name>; a crash, hang
# or sanitizer report fails the run and leaves the input as
# build-fuzz/<name>-crash-* (make it a unit test and a seed).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
each=$((seconds / 4 > 0 ? seconds / 4 : 1))
CC=clang CXX=clang++ cmake -S . -B build-fuzz -DPERFBUF_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build-fuzz -j"$(nproc)"
cd build-fuzz
for name in ring_parser ringbuf_cursor btf_decoder backward_ring; do
  echo "fuzz: ${name}_fuzz for ${each} s"
  mkdir -p "corpus/$name"
  "./fuzz/${name}_fuzz" -max_total_time="$each" -timeout=5 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="${name}-" "corpus/$name" "../fuzz/corpus/$name"
done
