#!/usr/bin/env bash
# Quick start: install what is needed, build, and run `perfbuf trace` for a few
# seconds while dd makes a steady stream of one-byte write(2) calls.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
echo
echo "== perfbuf trace --duration 5 (dd writes one byte per call meanwhile)"
timeout 6 dd if=/dev/zero of=/dev/null bs=1 count=20000000 status=none &
load=$!
./build/tools/perfbuf trace --duration 5
kill "$load" 2>/dev/null || true
wait "$load" 2>/dev/null || true
