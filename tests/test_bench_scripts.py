"""Every Python benchmark script in bench/ runs end to end at tiny sizes (their own correctness
gates included), so none can rot unseen between the runs that time them. Times mean nothing
here: only that each finishes, prints its table, and exits 0."""

import pathlib
import subprocess
import sys

import pytest
from helpers import require_installed

BENCH = pathlib.Path(__file__).resolve().parent.parent / "bench"


def run(script, *args, timeout=300):
    result = subprocess.run(
        [sys.executable, str(BENCH / script), *args], capture_output=True, text=True, timeout=timeout, cwd=BENCH
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return result.stdout


def test_stream_latency():
    pytest.importorskip("onnxruntime")
    out = run("stream_latency.py", "--input-size", "8", "--hidden-size", "16", "--rounds", "1", "--steps", "5")
    assert "fastgru int8" in out and "onnxruntime" in out


def test_torch_step():
    pytest.importorskip("torch")
    out = run("torch_step.py", "--configs", "small", "--threads", "1", "--iters", "1", "--no-packed")
    assert "glue" in out and "small" in out
    out = run("torch_step.py", "--configs", "b1", "--threads", "1", "--iters", "1", "--no-packed", "--fused-adam")
    assert "Adam fused" in out and "b1" in out


def test_compare_with_bfloat16():
    pytest.importorskip("torch")
    out = run(
        "compare.py",
        "--configs",
        "small",
        "--threads",
        "1",
        "--iters",
        "1",
        "--repeats",
        "1",
        "--no-alone",
        "--no-onnx",
        "--bf16",
    )
    assert "bfloat16 products" in out and "small (32,50,32,64)" in out


def test_mpi_scaling():
    pytest.importorskip("mpi4py")
    from test_distributed import find_mpiexec

    if find_mpiexec() is None:
        pytest.skip("no mpiexec (pip install mpich)")
    out = run("mpi_scaling.py", "--config", "small", "--batches", "1", "--repeats", "1")
    assert "all-reduce" in out


def test_keras_step():
    require_installed("keras", "jax")
    out = run(
        "keras_step.py", "--backends", "jax", "--configs", "small", "--threads", "1", "--repeats", "1", "--batches", "1"
    )
    assert "fastgru.keras.GRU" in out and "Keras alone" in out and "small (32,50,32,64)" in out


def test_int8_inference():
    out = run("int8_inference.py", "--configs", "small", "--threads", "1", "--rounds", "1")
    assert "float32/int8" in out and "small" in out
