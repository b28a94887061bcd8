"""The C++ core's own tests (tests/cpp), built and run from pytest so that the one test command
runs them everywhere:

- under AddressSanitizer + UndefinedBehaviorSanitizer (any report fails the run);
- a subset of this Python suite against the extension built with the same sanitizers;
- cross-compiled for aarch64 and run under qemu-user (its "max" CPU, with every optional extension), so
  the generic and NEON instruction sets run on their architecture, and the choice between them is checked
  on emulated CPUs with and without the extensions;
- the benchmark program bench_gru (bench/), optimized as it is measured: its own check against the
  naive GRU at a standard configuration, and its command line.

Builds go to build/tests-* in the checkout, so a second local run only rebuilds what changed.
A missing compiler or emulator skips the test with the reason on a developer machine, and fails
it when the CI environment variable is set (.ci/run installs them). To run one locally:
    python -m pytest tests/test_cpp_core.py -k sanitiz -rs
"""

import json
import os
import pathlib
import shutil
import subprocess
import sys
import sysconfig

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
SANITIZE = "-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"
# Python test files run against the sanitized extension: every entry point of the bindings, without
# torch (not built for a sanitized process) and without the tests that time or fork.
ASAN_PYTHON_SUBSET = [
    "tests/test_gru.py",
    "tests/test_dense.py",
    "tests/test_model.py",
    "tests/test_optim.py",
    "tests/test_losses.py",
    "tests/test_persistence.py",
    "tests/test_training.py",
    "tests/test_gemm.py",
    "tests/test_sizes.py",
    "tests/test_fuzz.py",
]
BUILD_TIMEOUT = 3600  # a guard against a hung compiler, not a measurement: builds on a busy machine are slow


def require(tool, why):
    """The path of tool; skips (or fails under CI) when it is missing."""
    path = shutil.which(tool)
    if path is None:
        message = f"{tool} not found: needed to {why} (Debian: see .ci/run)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


def run(command, **kwargs):
    """Runs command; fails the test with its output when it exits nonzero."""
    result = subprocess.run(command, capture_output=True, text=True, timeout=BUILD_TIMEOUT, **kwargs)
    if result.returncode != 0:
        pytest.fail(
            f"{' '.join(map(str, command))} exited with {result.returncode}\n"
            f"--- stdout\n{result.stdout[-20000:]}\n--- stderr\n{result.stderr[-20000:]}"
        )
    return result


def cmake_build(name, *options):
    """Configures and builds the project with the C++ tests into build/tests-<name>; returns the folder."""
    cmake = require("cmake", "build the C++ tests")
    require("ninja", "build the C++ tests")
    build = ROOT / "build" / f"tests-{name}"
    run([cmake, "-S", ROOT, "-B", build, "-G", "Ninja", "-DFASTGRU_BUILD_TESTS=ON", *options])
    run([cmake, "--build", build])
    return build


def ctest(build):
    result = run([require("ctest", "run the C++ tests"), "--test-dir", build, "--output-on-failure"])
    assert "100% tests passed" in result.stdout, result.stdout


@pytest.fixture(scope="session")
def sanitized_build():
    """The core, its C++ tests and the Python extension, all built with ASan + UBSan."""
    require("g++", "build with sanitizers")
    import pybind11

    return cmake_build(
        "asan",
        "-DCMAKE_BUILD_TYPE=Debug",
        "-DCMAKE_CXX_COMPILER=g++",
        f"-DCMAKE_CXX_FLAGS={SANITIZE}",
        "-DFASTGRU_BUILD_PYTHON=ON",
        f"-DPython_EXECUTABLE={sys.executable}",
        f"-Dpybind11_DIR={pybind11.get_cmake_dir()}",
    )


def test_cpp_tests_under_address_and_undefined_behavior_sanitizers(sanitized_build):
    ctest(sanitized_build)


def test_python_suite_subset_against_the_sanitized_extension(sanitized_build, tmp_path):
    """The package's Python files with the sanitized _core beside them, first on the path.
    CPython's own allocations are not leak-checked (detect_leaks=0)."""
    package = tmp_path / "fastgru"
    shutil.copytree(ROOT / "python" / "fastgru", package, ignore=shutil.ignore_patterns("__pycache__", "*.so"))
    (extension,) = sanitized_build.glob("_core*" + sysconfig.get_config_var("EXT_SUFFIX"))
    shutil.copy(extension, package)
    # ASan must be loaded first, and libstdc++ with it (python itself does not link it) so that
    # ASan's C++ exception interceptor finds the real __cxa_throw.
    preload = " ".join(
        run(["g++", f"-print-file-name={lib}"]).stdout.strip() for lib in ("libasan.so", "libstdc++.so.6")
    )
    # Reports go to files: pytest captures the tests' stderr, and a sanitizer ends the process.
    # Impossible allocations return null (MemoryError), as without ASan; they leave a WARNING line.
    reports = tmp_path / "sanitizer"
    env = dict(
        os.environ,
        PYTHONPATH=str(tmp_path),
        LD_PRELOAD=preload,
        FASTGRU_SANITIZED="1",
        ASAN_OPTIONS=f"detect_leaks=0:allocator_may_return_null=1:log_path={reports}",
        UBSAN_OPTIONS=f"halt_on_error=1:print_stacktrace=1:log_path={reports}",
    )
    probe = run([sys.executable, "-c", "import fastgru; print(fastgru.__file__)"], env=env)
    assert probe.stdout.strip().startswith(str(tmp_path)), probe.stdout
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *ASAN_PYTHON_SUBSET],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT,
    )
    found = "\n".join(p.read_text() for p in sorted(tmp_path.glob("sanitizer*")))
    assert "ERROR" not in found and "runtime error" not in found, found[:20000]
    assert result.returncode == 0, result.stdout[-20000:] + result.stderr[-20000:]


@pytest.fixture(scope="session")
def aarch64_build():
    """The core and its C++ tests built by the cross compiler, ctest running them under qemu's "max" CPU
    (every optional extension qemu emulates, so every variant the CPU check allows runs)."""
    compiler = require("aarch64-linux-gnu-g++", "cross-compile for aarch64 (package g++-aarch64-linux-gnu)")
    qemu = require("qemu-aarch64", "run aarch64 programs (package qemu-user)")
    build = cmake_build(
        "aarch64",
        "-DCMAKE_SYSTEM_NAME=Linux",
        "-DCMAKE_SYSTEM_PROCESSOR=aarch64",
        f"-DCMAKE_CXX_COMPILER={compiler}",
        "-DCMAKE_BUILD_TYPE=Release",
        "-DCMAKE_EXPORT_COMPILE_COMMANDS=ON",
        f"-DCMAKE_CROSSCOMPILING_EMULATOR={qemu};-cpu;max;-L;/usr/aarch64-linux-gnu",
    )
    return build, qemu


def test_cpp_tests_on_aarch64_under_qemu(aarch64_build):
    """Every test program checks each instruction set available (generic, neon, neon_dotprod, neon_bf16)
    against its truth."""
    build, _ = aarch64_build
    ctest(build)


@pytest.mark.parametrize(
    ("cpu", "forced", "available", "active"),
    [
        ("max", None, "generic neon neon_dotprod neon_bf16", "neon_bf16"),
        ("max", "generic", "generic neon neon_dotprod neon_bf16", "generic"),
        ("max", "NEON", "generic neon neon_dotprod neon_bf16", "neon"),
        ("max", "neon_dotprod", "generic neon neon_dotprod neon_bf16", "neon_dotprod"),
        ("cortex-a76", None, "generic neon neon_dotprod", "neon_dotprod"),  # Armv8.2-A with the dot product, no BF16
        ("cortex-a53", None, "generic neon", "neon"),  # Armv8.0-A
        ("cortex-a53", "neon_dotprod", None, None),
        ("cortex-a76", "neon_bf16", None, None),
    ],
)
def test_aarch64_instruction_set_choice_under_qemu(aarch64_build, cpu, forced, available, active):
    """neon on any AArch64 CPU, neon_dotprod where the system reports the dot product, neon_bf16 where it
    reports BF16 too (the widest is the default), and
    FASTGRU_ISA forces any of them the CPU supports; one it lacks is an error."""
    build, qemu = aarch64_build
    env = {k: v for k, v in os.environ.items() if k != "FASTGRU_ISA"}
    if forced:
        env["FASTGRU_ISA"] = forced
    command = [qemu, "-cpu", cpu, "-L", "/usr/aarch64-linux-gnu", build / "tests" / "cpp" / "test_isa"]
    if available is None:
        result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
        assert result.returncode != 0
        assert f"FASTGRU_ISA: instruction set '{forced}' is not supported by this CPU" in result.stderr, result.stderr
        return
    out = run(command, env=env).stdout
    listed = dict(line.split(": ", 1) for line in out.splitlines() if line.startswith(("available: ", "active: ")))
    # An x86 C++ test build also has emulated variants (never the default); none are declared here.
    assert [isa for isa in listed["available"].split() if not isa.startswith("emulated_")] == available.split(), out
    assert listed["active"] == active, out


def test_aarch64_compile_flags(aarch64_build):
    """No -march=native anywhere; -march only in the ARM variants' files: the baseline, plus the dot
    product for neon_dotprod and neon_bf16, and BF16 for neon_bf16."""
    build, _ = aarch64_build
    commands = {
        pathlib.Path(c["file"]).name: c["command"] for c in json.loads((build / "compile_commands.json").read_text())
    }
    assert not [name for name, command in commands.items() if "-march=native" in command]
    marched = {
        name: command.split("-march=")[1].split()[0] for name, command in commands.items() if "-march=" in command
    }
    assert marched == {
        "isa_neon.cpp": "armv8-a",
        "isa_neon_dotprod.cpp": "armv8.2-a+dotprod",
        "isa_neon_bf16.cpp": "armv8.2-a+dotprod+bf16",
    }, marched


@pytest.fixture(scope="session")
def bench_gru():
    build = cmake_build("bench", "-DCMAKE_BUILD_TYPE=Release", "-DFASTGRU_BUILD_BENCH=ON")
    return build / "bench" / "bench_gru"


def test_benchmark_program_checks_the_gru_and_times_every_row(bench_gru):
    """bench_gru exits 1 when its GRU disagrees with the naive one, so exit 0 with "ok" is the check."""
    out = run([bench_gru, "--config", "small", "--threads", "2", "--iters", "1"]).stdout
    assert "small   B=32  T=50" in out and " ok" in out and "MISMATCH" not in out, out
    rows = [line.split() for line in out.splitlines() if line.startswith("small ") and "B=" not in line]
    assert len(rows) == 8, out  # forward x2, backward, forward + backward, training step, three GEMMs
    assert all(float(row[-3]) > 0 for row in rows), out  # median ms


def test_benchmark_program_beside_a_spinning_foreign_thread(bench_gru):
    out = run([bench_gru, "--config", "small", "--threads", "2", "--iters", "1", "--foreign-spin"]).stdout
    assert "a foreign thread spins" in out, out
    (split,) = [line for line in out.splitlines() if "split by hand" in line]
    assert float(split.split()[-3]) > 0, out


def test_benchmark_program_command_line(bench_gru):
    bad = subprocess.run([bench_gru, "--config", "nope"], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "unknown config: nope" in bad.stderr
    trip = subprocess.run([bench_gru, "--pingpong"], capture_output=True, text=True, timeout=60)
    if (os.cpu_count() or 1) < 2:
        assert trip.returncode == 3
    else:
        assert trip.returncode == 0 and float(trip.stdout.split()[-1]) > 0, trip.stdout
