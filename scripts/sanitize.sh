#!/usr/bin/env bash
# Runs the whole test suite under AddressSanitizer + UndefinedBehaviorSanitizer
# (build-asan/), then the tests that use threads under ThreadSanitizer
# (build-tsan/). Any report fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs="$(nproc)"
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1"

cmake -S . -B build-asan -DPERFBUF_ASAN=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build-asan -j"$jobs"
ctest --test-dir build-asan --output-on-failure -j2

# Tests with threads: a producer thread against the reader, the benchmark,
# wake() from another thread (C++ and C API), and the NATS sink's reader,
# publisher and client threads.
cmake -S . -B build-tsan -DPERFBUF_TSAN=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build-tsan -j"$jobs"
ctest --test-dir build-tsan --output-on-failure -j2 -R 'Overload|BenchCli|Wake\.|CApi|NatsSink|NatsCli'
