"""Instruction-set dispatch through the FASTGRU_ISA environment variable, in fresh processes: each
path this CPU runs, forced that way, matches the NumPy reference; a bad value is a clear error."""

import os
import subprocess
import sys
import textwrap

import pytest

import fastgru

CHECK = textwrap.dedent("""
    import numpy as np, fastgru
    print(fastgru.active_isa())
    for dtype, rtol in (("float32", 1e-5), ("float64", 1e-10)):
        cpp = fastgru.GRU(5, 40, 2, bidirectional=True, dtype=dtype, seed=0)
        ref = fastgru.GRU(5, 40, 2, bidirectional=True, dtype=dtype, seed=0, backend="numpy")
        x = np.random.default_rng(0).standard_normal((6, 3, 5))
        for layer in (cpp, ref):
            y, _ = layer(x, lengths=[6, 2, 4])
            layer.backward(np.ones_like(y))
        (y_c, _), (y_r, _) = cpp.eval()(x), ref.eval()(x)
        for got, want in ((y_c, y_r), (cpp.grad, ref.grad)):
            assert np.abs(got - want).max() <= rtol * np.abs(want).max(), (dtype, np.abs(got - want).max())
""")


def run_with_isa(value, code):
    env = dict(os.environ, FASTGRU_ISA=value)
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("isa", fastgru.available_isas())
def test_forced_isa_matches_reference(isa):
    result = run_with_isa(isa, CHECK)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[0] == isa


def test_isa_names_match_in_any_case():
    best = fastgru.available_isas()[-1]
    code = "import fastgru; print(fastgru.active_isa()); fastgru.set_isa('GENERIC'); print(fastgru.active_isa())"
    result = run_with_isa(best.upper(), code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [best, "generic"]


def test_bad_isa_is_a_clear_error_and_set_isa_recovers():
    code = textwrap.dedent("""
        import numpy as np, fastgru
        try:
            fastgru.GRU(2, 3)(np.zeros((1, 1, 2)))
        except ValueError as e:
            print(e)
        fastgru.set_isa("generic")
        fastgru.GRU(2, 3)(np.zeros((1, 1, 2)))
        print("recovered", fastgru.active_isa())
    """)
    result = run_with_isa("bogus", code)
    assert result.returncode == 0, result.stderr
    assert "FASTGRU_ISA" in result.stdout and "unknown instruction set 'bogus'" in result.stdout
    assert "recovered generic" in result.stdout


def cpu_flags():
    try:
        with open("/proc/cpuinfo") as f:
            # x86 lists "flags", ARM "Features"
            return next((line.split(":", 1)[1].split() for line in f if line.startswith(("flags", "Features"))), [])
    except OSError:
        return []


# Each instruction set with special instructions, by the /proc/cpuinfo flags it needs.
NEEDS_FLAGS = {
    "avx2": ["avx2", "fma"],
    "avxvnni": ["avx2", "fma", "avx_vnni"],
    "avx512": ["avx512f", "avx512vl", "avx512bw", "avx512dq"],
    "avx512vnni": ["avx512f", "avx512vl", "avx512bw", "avx512dq", "avx512_vnni"],
    "avx512bf16": ["avx512f", "avx512vl", "avx512bw", "avx512dq", "avx512_vnni", "avx512_bf16"],
    "amx": [
        "avx512f",
        "avx512vl",
        "avx512bw",
        "avx512dq",
        "avx512_vnni",
        "avx512_bf16",
        "amx_tile",
        "amx_bf16",
        "amx_int8",
    ],
    "neon": ["asimd"],
    "neon_dotprod": ["asimd", "asimddp"],
    "neon_bf16": ["asimd", "asimddp", "bf16"],
}


@pytest.mark.parametrize("isa", sorted(NEEDS_FLAGS))
def test_every_instruction_set_the_cpu_has_is_available(isa):
    flags = cpu_flags()
    if not flags or ("avx2" not in flags and isa.startswith("avx")):
        pytest.skip("not an x86 CPU with AVX2 (or no /proc/cpuinfo)")
    if "asimd" not in flags and isa.startswith("neon"):
        pytest.skip("not a 64-bit ARM CPU")
    missing = [flag for flag in NEEDS_FLAGS[isa] if flag not in flags]
    if missing:
        emulated = {
            "avxvnni": " (the C++ tests run its 256-bit int8 products' loops in emulation)",
            "avx512vnni": " (the C++ tests run its 512-bit int8 products' loops in emulation)",
            "avx512bf16": " (the C++ tests run its bfloat16 and 512-bit int8 kernels' layouts and loops in emulation)",
            "amx": " (the C++ tests run its bfloat16 and 512-bit int8 kernels' layouts and loops in emulation)",
        }.get(isa, "")
        pytest.skip(f"this CPU lacks {', '.join(missing)}: the {isa} kernels cannot run here{emulated}")
    assert isa in fastgru.available_isas()
