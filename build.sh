#!/usr/bin/env bash
# Tandem's one entry point: ./build.sh [build|test|run|bench] [--cuda] [--help]
#
#   build  (default) native library (CMake, Release) and the .NET solution (Release)
#   test   build, then every test: native GoogleTest suites (ctest), then NUnit (dotnet test)
#   run    build, then the main job: the demo pair decoding together (R-Stitch), tokens coloured
#   bench  build, then the native CPU benchmark (random 125M-parameter Llama, 2 threads)
#   --cuda also build the CUDA backend (needs nvcc; for the GPU machine) and run its tests;
#          without a .NET SDK there, only the native build and tests run
#
# Assumed present: the .NET 10 SDK, g++ and cmake >= 3.25. Missing Debian packages (GoogleTest,
# Google Benchmark, nlohmann-json) are installed with apt-get when running as root, else the exact
# command is printed.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BUILD_DIR="${TANDEM_BUILD_DIR:-$ROOT/build}"
VERB="build"
CUDA=0
JOBS="$(nproc 2>/dev/null || echo 2)"

usage() { sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; }

for arg in "$@"; do
  case "$arg" in
    build|test|run|bench) VERB="$arg" ;;
    --cuda) CUDA=1 ;;
    -h|--help|help) usage; exit 0 ;;
    *) echo "build.sh: unknown argument '$arg'" >&2; usage >&2; exit 2 ;;
  esac
done

# The GPU machine (--cuda) may have no .NET SDK: there the native build and every native test,
# the CUDA suites included, still run, and the managed steps are skipped with a notice.
MANAGED=1
if [ "$CUDA" -eq 1 ] && ! command -v dotnet >/dev/null; then MANAGED=0; fi

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }
die() { printf 'build.sh: %s\n' "$*" >&2; exit 1; }

check_tools() {
  command -v g++ >/dev/null || die "g++ not found. On Debian/Ubuntu: apt-get install -y g++"
  command -v cmake >/dev/null || die "cmake not found. On Debian/Ubuntu: apt-get install -y cmake"
  local v; v="$(cmake --version | head -n1 | awk '{print $3}')"
  if [ "$(printf '%s\n3.25\n' "$v" | sort -V | head -n1)" != "3.25" ]; then
    die "cmake $v is too old; 3.25 or newer is needed"
  fi
  if [ "$MANAGED" -eq 1 ]; then
    command -v dotnet >/dev/null || die "the .NET 10 SDK (dotnet) was not found: https://dot.net/download"
    dotnet --list-sdks | grep -q '^10\.' || die "the .NET 10 SDK is needed; found: $(dotnet --list-sdks | tr '\n' ' ')"
  fi
}

# Debian packages the native build needs.
APT_PACKAGES=(libgtest-dev libgmock-dev libbenchmark-dev nlohmann-json3-dev)

install_packages() {
  command -v dpkg-query >/dev/null || { say "not a Debian/Ubuntu system: make sure GoogleTest, Google Benchmark and nlohmann-json are installed"; return; }
  local missing=()
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ "${#missing[@]}" -eq 0 ] && return
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
    say "installing missing packages: ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    die "missing packages: ${missing[*]}. Install them with: sudo apt-get install -y ${missing[*]}"
  fi
}

build_native() {
  local cuda_flag="-DTANDEM_CUDA=OFF"
  [ "$CUDA" -eq 1 ] && cuda_flag="-DTANDEM_CUDA=ON"
  say "configuring native build in $BUILD_DIR ($cuda_flag)"
  cmake -S "$ROOT" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release "$cuda_flag" >/dev/null
  say "building native code"
  cmake --build "$BUILD_DIR" -j "$JOBS"
}

build_managed() {
  say "restoring and building the .NET solution"
  dotnet build "$ROOT/Interop.sln" -c Release -nologo -v q -clp:NoSummary
}

do_build() {
  check_tools
  install_packages
  build_native
  if [ "$MANAGED" -eq 1 ]; then
    build_managed
  else
    say "no .NET SDK on this machine: skipping the managed build and tests (CI runs them)"
  fi
}

tandem() { dotnet run --project "$ROOT/src/Tandem.Cli" -c Release --no-build -- "$@"; }

case "$VERB" in
  build)
    do_build ;;
  test)
    do_build
    say "native tests (ctest)"
    ctest --test-dir "$BUILD_DIR" --output-on-failure -j "$JOBS"
    if [ "$MANAGED" -eq 1 ]; then
      say "managed tests (dotnet test)"
      dotnet test "$ROOT/tests/Tandem.Tests" -c Release --no-build -nologo -v q
    fi
    ;;
  run)
    [ "$MANAGED" -eq 1 ] || die "run needs the .NET 10 SDK (the tandem command is C#)"
    do_build
    DEMO="$ROOT/models/demo"
    [ -f "$DEMO/small/config.json" ] && [ -f "$DEMO/large/config.json" ] || die "the demo pair ($DEMO/small, $DEMO/large) is missing from this checkout"
    # The shipped demo pair on the CPU: the small model writes the worked sum, and wherever it is unsure
    # (normalized entropy above 0.005, a point of the `tandem eval` sweep where the large model writes a few
    # percent of the tokens) its token is dropped and the large model writes that position.
    # Colour = uncertainty; bold underlined = written by the large model; struck through = dropped.
    say "tandem generate: the demo pair with R-Stitch on the CPU (models/demo, see its README.md)"
    tandem generate --small "$DEMO/small" --large "$DEMO/large" --mode rstitch --threshold 0.005 --device cpu \
      --prompt "48213+9875-3906=" --max-tokens 320 --temperature 0 --show-uncertainty --verbose
    ;;
  bench)
    do_build
    say "native CPU benchmark"
    "$BUILD_DIR/native/bench/tandem_model_bench" --threads 2 --dir "$BUILD_DIR/bench-models"
    ;;
esac
