"""fastgru.keras.GRU on each Keras backend against keras.layers.GRU: the cases are in
tests/keras_cases.py, run once per backend in a process of its own (Keras picks its backend at
import), and reported here one test per backend and case."""

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent
# The case names, read from the script: importing it would import Keras (and TensorFlow) here.
CASES = sorted(re.findall(r"^def case_(\w+)\(", (HERE / "keras_cases.py").read_text(), re.M))
BACKEND_PACKAGES = {"torch": "torch", "jax": "jax", "tensorflow": "tensorflow"}
_results = {}


def run_backend(backend):
    """case name -> "ok" or a traceback, from one process running every case on backend."""
    if backend not in _results:
        if importlib.util.find_spec("keras") is None or importlib.util.find_spec(BACKEND_PACKAGES[backend]) is None:
            pytest.skip(f"keras or {backend} is not installed")
        env = dict(
            os.environ,
            KERAS_BACKEND=backend,
            OMP_NUM_THREADS="1",
            TF_CPP_MIN_LOG_LEVEL="3",
            PYTHONPATH=os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
        )
        proc = subprocess.run(
            [sys.executable, str(HERE / "keras_cases.py")], capture_output=True, text=True, env=env, timeout=900
        )
        lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULTS ")]
        if proc.returncode != 0 or not lines:
            failure = f"exit code {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
            _results[backend] = {"process": failure}
        else:
            _results[backend] = json.loads(lines[-1][len("RESULTS ") :])
    return _results[backend]


def test_import_fastgru_imports_no_framework():
    code = (
        "import sys, fastgru; bad = [m for m in ('keras', 'jax', 'tensorflow') if m in sys.modules]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("backend", sorted(BACKEND_PACKAGES))
@pytest.mark.parametrize("case", CASES)
def test_case(backend, case):
    results = run_backend(backend)
    assert "process" not in results, results.get("process")
    assert results.get(case) == "ok", results.get(case)
