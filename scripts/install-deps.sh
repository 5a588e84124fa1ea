#!/usr/bin/env bash
# Installs every Debian package perfbuf needs to build, test and benchmark.
# Debian 12, as root. Safe to run again: apt skips what is already there.
set -euo pipefail

packages=(
  build-essential cmake pkg-config  # C++ toolchain
  clang llvm                        # BPF programs: clang -target bpf
  libbpf-dev bpftool                # loading BPF objects, skeletons
  libelf-dev zlib1g-dev             # libbpf's own dependencies
  libgtest-dev libbenchmark-dev     # tests and microbenchmarks
  libcli11-dev                      # the tool's command line (CLI11)
  nlohmann-json3-dev                # the tool's JSON output, and the tests that parse it
  libfmt-dev                        # the tool's text output ({fmt})
  libnats-dev nats-server           # --sink nats://: the NATS C client; the JetStream server its tests start
  libclang-rt-14-dev                # sanitizer and libFuzzer runtimes for clang
  gnuplot-nox                       # perfbuf bench --plot
  dpkg-dev file                     # cpack -G DEB: the package's library dependencies (dpkg-shlibdeps)
  python3 ninja-build               # scripts/mutation-check.py (tomllib, fast rebuilds), fuzz corpus
  strace                            # a trace test cuts a write(2) short with EINTR (-e inject)
)

if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps.sh: run as root (it installs Debian packages with apt-get)" >&2
  exit 1
fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
