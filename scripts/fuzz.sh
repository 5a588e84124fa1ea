#!/usr/bin/env bash
# Builds the libFuzzer target with clang (ASan + UBSan) and fuzzes the ring
# parser for SECONDS (default 60) on top of the committed corpus. New inputs
# go to build-fuzz/corpus; a crash, hang or sanitizer report fails the run and
# leaves the input as build-fuzz/crash-* (make it a unit test).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
CC=clang CXX=clang++ cmake -S . -B build-fuzz -DPERFBUF_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build-fuzz -j"$(nproc)"
mkdir -p build-fuzz/corpus
cd build-fuzz
./fuzz/ring_parser_fuzz -max_total_time="$seconds" -timeout=5 -rss_limit_mb=2048 \
  -print_final_stats=1 corpus ../fuzz/corpus/ring_parser
