"""The version is written once (pyproject.toml); the build carries it into the compiled core, from
which the package reads it."""

import importlib.metadata

import fastgru
from fastgru import _core


def test_version_is_the_installed_distribution_version():
    assert fastgru.__version__ == _core.__version__ == importlib.metadata.version("fastgru")


def test_python_m_fastgru_prints_what_a_bug_report_needs():
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "fastgru"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert f"fastgru {fastgru.__version__}" in text
    assert f"in use {fastgru.active_isa()}" in text and "threads:" in text and "CPU:" in text
    assert "build: " in text and "NumPy" in text
    for name in ("torch", "onnx", "onnxruntime", "mpi4py"):
        assert name in text
