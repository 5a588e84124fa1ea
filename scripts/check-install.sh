#!/usr/bin/env bash
# Checks perfbuf the way another project uses it. As root (the examples load
# BPF programs). In a scratch folder that is removed at the end:
#  1. every combination of PERFBUF_BUILD_TOOLS / PERFBUF_BUILD_TESTS configures;
#  2. the library alone is built (build-install-check/) and installed into a
#     prefix: headers, shared library with soname, static library, CMake
#     package, perfbuf.pc, BPF helper; no path of this machine's build in them;
#  3. each example in examples/ is built out of tree with find_package(perfbuf)
#     against that prefix and run: write_count (C, the ported libbpf code)
#     must count exactly the K writes of a child; open_trace (C++) must print
#     the path a child opens, and stop at once on SIGINT;
#  4. open_trace is built again inside a parent project that adds perfbuf
#     with add_subdirectory (only the library may be built), write_count with
#     a plain compiler command line and `pkg-config --cflags --libs perfbuf`;
#  5. perfbuf_add_bpf_skeleton() reports a wrong call clearly;
#  6. `cpack -G DEB` makes a package; unpacked with dpkg -x into a scratch
#     root (no install on this machine), write_count builds against it and runs.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
jobs=2
build=$repo/build-install-check
scratch=$(mktemp -d /tmp/perfbuf-install-check.XXXXXX)
children=()
cleanup() {
  for pid in "${children[@]}"; do kill "$pid" 2>/dev/null || true; done
  rm -rf "$scratch"
}
trap cleanup EXIT

step() { echo; echo "== check-install: $*"; }
fail() { echo "check-install: FAILED: $*" >&2; exit 1; }
quiet() {  # runs a command, shows its output only if it fails
  local log
  log=$(mktemp "$scratch/log.XXXXXX")
  if ! "$@" >"$log" 2>&1; then cat "$log" >&2; fail "$*"; fi
}

# Waits (at most 10 s) until file $1 has a line containing $2.
wait_for_line() {
  local i
  for i in $(seq 100); do
    grep -qF -- "$2" "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  cat "$1" >&2
  fail "no line containing '$2' in $1 within 10 s"
}

# write_count <binary> <label>: a child makes exactly K write(2) calls once the
# tracer is attached; the tracer must count exactly K, with no bad cookie.
check_write_count() {
  local bin=$1 label=$2 k=500 out=$scratch/write_count.$2.out
  mkfifo "$scratch/go.$FUNCNAME.$label"
  # The child's pid is known before it writes: it waits for the fifo, then
  # becomes dd, which makes one write(2) per byte and nothing else.
  ( read -r _ <"$scratch/go.$FUNCNAME.$label"; exec dd if=/dev/zero of=/dev/null bs=1 count=$k status=none ) &
  local child=$!
  children+=("$child")
  timeout 30 "$bin" "$child" >"$out" 2>&1 &
  local tracer=$!
  wait_for_line "$out" "tracing write(2) of pid $child"
  echo go >"$scratch/go.$FUNCNAME.$label"
  wait "$child"
  # The tracer sees that the process is gone, drains the rings and prints its count.
  wait "$tracer" || { cat "$out" >&2; fail "$label: write_count exited with an error"; }
  cat "$out"
  grep -qFx "pid $child: $k writes, 0 bad cookies" "$out" ||
    fail "$label: write_count did not count exactly $k writes of pid $child"
}

# open_trace <binary> <label>: a child opens a file with a name no one else
# uses; open_trace must print it with the child's pid and comm, then stop
# within 2 s of SIGINT.
check_open_trace() {
  local bin=$1 label=$2 out=$scratch/open_trace.$2.out
  local marker=$scratch/marker-$label-$RANDOM$RANDOM
  echo x >"$marker"
  mkfifo "$scratch/go.$FUNCNAME.$label"
  ( read -r _ <"$scratch/go.$FUNCNAME.$label"; exec cat "$marker" ) >/dev/null &
  local child=$!
  children+=("$child")
  "$bin" "$child" >"$out" 2>&1 &
  local tracer=$!
  children+=("$tracer")
  wait_for_line "$out" "tracing openat(2) of pid $child"
  echo go >"$scratch/go.$FUNCNAME.$label"
  wait "$child"
  wait_for_line "$out" "$marker"
  kill -INT "$tracer"
  local i
  for i in $(seq 20); do kill -0 "$tracer" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$tracer" 2>/dev/null && fail "$label: open_trace still runs 2 s after SIGINT"
  wait "$tracer" || { cat "$out" >&2; fail "$label: open_trace exited with an error"; }
  grep -F -e "tracing" -e "$marker" -e " events" "$out"  # the rest: the child's other opens
  grep -qFx "$child cat $marker" "$out" || fail "$label: no line \"$child cat $marker\""
  grep -qE '^[0-9]+ events$' "$out" || fail "$label: no final event count"
}

step "every combination of the PERFBUF_BUILD_* options configures"
for tools in ON OFF; do
  for tests in ON OFF; do
    quiet cmake -S "$repo" -B "$scratch/options-$tools-$tests" \
      -DPERFBUF_BUILD_TOOLS=$tools -DPERFBUF_BUILD_TESTS=$tests
    echo "PERFBUF_BUILD_TOOLS=$tools PERFBUF_BUILD_TESTS=$tests: configures"
  done
done

step "build the library alone and install it into $scratch/prefix"
# Configured for /usr, as the Debian package is; installed elsewhere with --prefix.
quiet cmake -S "$repo" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_INSTALL_PREFIX=/usr \
  -DPERFBUF_BUILD_TOOLS=OFF -DPERFBUF_BUILD_TESTS=OFF
quiet cmake --build "$build" -j"$jobs"
prefix=$scratch/prefix
quiet cmake --install "$build" --prefix "$prefix"
libdir=$(dirname "$(find "$prefix" -name libperfbuf.a)")
for f in include/perfbuf/perfbuf.h include/perfbuf/reader.h include/perfbuf/ring.h \
         include/perfbuf/error.h; do
  [ -f "$prefix/$f" ] || fail "$f is not installed"
done
for f in libperfbuf.a libperfbuf.so pkgconfig/perfbuf.pc cmake/perfbuf/perfbufConfig.cmake \
         cmake/perfbuf/perfbufConfigVersion.cmake cmake/perfbuf/perfbufTargets.cmake \
         cmake/perfbuf/perfbufBpf.cmake; do
  [ -e "$libdir/$f" ] || fail "${libdir#"$prefix"/}/$f is not installed"
done
soname=$(readelf -d "$libdir/libperfbuf.so" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[ -n "$soname" ] && [ -e "$libdir/$soname" ] || fail "libperfbuf.so has no soname, or no $soname"
[ -f "$(readlink -f "$libdir/libperfbuf.so")" ] || fail "libperfbuf.so is a dangling link"
if grep -rl -e "$repo" -e "$build" "$libdir/cmake" "$libdir/pkgconfig"; then
  fail "installed CMake or pkg-config files name this machine's source or build folder"
fi
echo "installed: $(cd "$prefix" && find . -type f -o -type l | sort | tr '\n' ' ')"
echo "soname: $soname"

step "examples out of tree with find_package(perfbuf)"
for example in "$repo"/examples/*/; do
  name=$(basename "$example")
  quiet cmake -S "$example" -B "$scratch/$name" -DCMAKE_PREFIX_PATH="$prefix"
  grep -q "^perfbuf_DIR:PATH=$libdir/cmake/perfbuf$" "$scratch/$name/CMakeCache.txt" ||
    fail "$name found a perfbuf other than the one installed in $prefix"
  quiet cmake --build "$scratch/$name" -j"$jobs"
  echo "$name: built"
done
check_write_count "$scratch/write_count/write_count" find_package
check_open_trace "$scratch/open_trace/open_trace" find_package

step "open_trace in a parent project that adds perfbuf with add_subdirectory"
mkdir -p "$scratch/parent"
cat >"$scratch/parent/CMakeLists.txt" <<EOF
cmake_minimum_required(VERSION 3.20)
project(parent LANGUAGES C CXX)
add_subdirectory("$repo" perfbuf)
add_subdirectory("$repo/examples/open_trace" open_trace)
EOF
quiet cmake -S "$scratch/parent" -B "$scratch/parent/build"
for dir in tools bench bpf tests; do
  [ ! -e "$scratch/parent/build/perfbuf/$dir" ] ||
    fail "add_subdirectory(perfbuf) configured perfbuf's $dir/: only the library should be built"
done
quiet cmake --build "$scratch/parent/build" -j"$jobs"
check_open_trace "$scratch/parent/build/open_trace/open_trace" add_subdirectory

step "write_count with a plain compiler command line and pkg-config"
export PKG_CONFIG_PATH=$libdir/pkgconfig
pc=$scratch/pkg-config
mkdir -p "$pc"
multiarch=$(gcc -print-multiarch)
arch=$(uname -m | sed -e 's/x86_64/x86/' -e 's/aarch64/arm64/')
quiet clang -g -O2 -target bpf -D__TARGET_ARCH_"$arch" -idirafter /usr/include/"$multiarch" \
  -c "$repo/examples/write_count/write_count.bpf.c" -o "$pc/write_count.bpf.o"
bpftool gen skeleton "$pc/write_count.bpf.o" name write_count_bpf >"$pc/write_count_bpf.skel.h"
# shellcheck disable=SC2046
quiet cc -O2 -Wall -I"$pc" -o "$pc/write_count" "$repo/examples/write_count/write_count.c" \
  $(pkg-config --cflags --libs perfbuf) -Wl,-rpath,"$(pkg-config --variable=libdir perfbuf)"
echo "cc ... $(pkg-config --cflags --libs perfbuf)"
check_write_count "$pc/write_count" pkg-config

step "perfbuf_add_bpf_skeleton() says what is wrong with a wrong call"
mkdir -p "$scratch/bad-call"
cat >"$scratch/bad-call/CMakeLists.txt" <<'EOF'
cmake_minimum_required(VERSION 3.20)
project(bad_call LANGUAGES C)
find_package(perfbuf REQUIRED)
perfbuf_add_bpf_skeleton(${CASE})
EOF
expect_error() {  # <arguments> <part of the expected message> [cmake options]
  local out
  rm -rf "$scratch/bad-call/build"
  if out=$(cmake -S "$scratch/bad-call" -B "$scratch/bad-call/build" \
             -DCMAKE_PREFIX_PATH="$prefix" "-DCASE=$1" "${@:3}" 2>&1); then
    fail "perfbuf_add_bpf_skeleton($1) was accepted"
  fi
  # CMake wraps long messages: compare with every run of blanks as one space.
  grep -q "$2" <<<"$(tr -s ' \n' '  ' <<<"$out")" || { echo "$out" >&2; fail "perfbuf_add_bpf_skeleton($1): message lacks '$2'"; }
  echo "perfbuf_add_bpf_skeleton($1): $2"
}
expect_error "probe;missing.bpf.c" "source .*missing.bpf.c\" does not exist"
expect_error "my-probe;missing.bpf.c" "must be a C identifier"
touch "$scratch/bad-call/p.bpf.c"
expect_error "probe;p.bpf.c;INCLUDE;x" "unknown arguments \"INCLUDE;x\""
expect_error "probe;p.bpf.c" "clang not found (PERFBUF_BPF_CLANG = /nonexistent/clang)" \
  -DPERFBUF_BPF_CLANG=/nonexistent/clang

step "cpack -G DEB, unpacked with dpkg -x, write_count against it"
(cd "$build" && quiet cpack -G DEB)
deb=$(ls "$build"/*.deb)
echo "package: $(basename "$deb")"
dpkg-deb -f "$deb" Package Version Depends Recommends
depends=$(dpkg-deb -f "$deb" Depends)
for dep in libbpf-dev libbpf1 libstdc++6 libc6; do
  grep -qw "$dep" <<<"$depends" || fail "the package does not depend on $dep (Depends: $depends)"
done
contents=$(dpkg-deb -c "$deb")
for f in usr/include/perfbuf/perfbuf.h "usr/lib/$multiarch/libperfbuf.so" \
         "usr/lib/$multiarch/libperfbuf.a" "usr/lib/$multiarch/cmake/perfbuf/perfbufConfig.cmake" \
         "usr/lib/$multiarch/cmake/perfbuf/perfbufBpf.cmake" "usr/lib/$multiarch/pkgconfig/perfbuf.pc"; do
  grep -q "\./$f" <<<"$contents" || fail "the package lacks /$f"
done
debroot=$scratch/debroot
dpkg -x "$deb" "$debroot"
quiet cmake -S "$repo/examples/write_count" -B "$scratch/deb-write_count" \
  -DCMAKE_PREFIX_PATH="$debroot/usr"
quiet cmake --build "$scratch/deb-write_count" -j"$jobs"
linked=$(ldd "$scratch/deb-write_count/write_count")
grep -q "$debroot/usr/lib/$multiarch/libperfbuf.so" <<<"$linked" ||
  fail "write_count built against the package does not load the package's libperfbuf.so:
$linked"
check_write_count "$scratch/deb-write_count/write_count" deb

echo
echo "check-install: all checks passed"
