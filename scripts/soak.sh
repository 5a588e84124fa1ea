#!/usr/bin/env bash
# Soak test: runs `perfbuf trace` under sustained write(2) load for MINUTES
# (default 10) and reports the tracer's memory, open fds and losses at the
# start and the end, with a sample every minute. As root. Not part of CI.
#
#   scripts/soak.sh [MINUTES]
set -euo pipefail
cd "$(dirname "$0")/.."
minutes="${1:-10}"
[ -x build/tools/perfbuf ] || scripts/build.sh
log="$(mktemp /tmp/perfbuf-soak.XXXXXX)"

# Load: two dd processes making one-byte writes, as long as the soak lasts.
dd if=/dev/zero of=/dev/null bs=1 status=none &
load1=$!
dd if=/dev/zero of=/dev/null bs=1 status=none &
load2=$!
./build/tools/perfbuf trace --json >"$log" &
tracer=$!
trap 'kill $load1 $load2 $tracer 2>/dev/null || true' EXIT

sample() {  # elapsed-seconds label
  local rss fds last
  rss=$(awk '/^VmRSS:/ {print $2}' /proc/$tracer/status)
  fds=$(ls /proc/$tracer/fd | wc -l)
  last=$(grep '"type":"interval"' "$log" | tail -n 1)
  printf '%-8s %6ss  rss %6s KiB  fds %3s  received %12s  lost %8s  rate %9s/s\n' "$2" "$1" \
    "$rss" "$fds" "$(sed -n 's/.*"received":\([0-9]*\).*/\1/p' <<<"$last")" \
    "$(sed -n 's/.*"lost":\([0-9]*\).*/\1/p' <<<"$last")" \
    "$(sed -n 's/.*"events_per_s":\([0-9]*\).*/\1/p' <<<"$last")"
}

echo "soak: perfbuf trace for $minutes min under 2 x dd bs=1 load (log: $log)"
sleep 5
sample 5 start
start_rss=$(awk '/^VmRSS:/ {print $2}' /proc/$tracer/status)
start_fds=$(ls /proc/$tracer/fd | wc -l)
end=$((SECONDS + minutes * 60 - 5))
next=$((SECONDS + 60))
while [ $SECONDS -lt $end ]; do
  sleep 1
  if [ $SECONDS -ge $next ]; then
    sample $((SECONDS)) sample
    next=$((next + 60))
  fi
done
sample $((minutes * 60)) end
end_rss=$(awk '/^VmRSS:/ {print $2}' /proc/$tracer/status)
end_fds=$(ls /proc/$tracer/fd | wc -l)
kill -INT $tracer
wait $tracer || true
summary=$(grep '"type":"summary"' "$log")
echo "summary: $summary"
echo "rss: $start_rss -> $end_rss KiB, fds: $start_fds -> $end_fds"
