#!/usr/bin/env bash
# Builds everything and runs the whole test suite with ctest. The kernel tests
# need root; with CI=true they fail instead of skipping when they cannot run.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh
ctest --test-dir build --output-on-failure -j2 "$@"
