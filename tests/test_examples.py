"""The examples behave well without their optional packages: each runs in a fresh process in which
the package is hidden (its sys.modules entry set to None, so importing it fails as if it were not
installed), with tiny settings so the test stays cheap."""

import os
import subprocess
import sys
from pathlib import Path

from helpers import require_installed

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"

RUN_HIDING = """
import runpy, sys
hidden, script, *args = sys.argv[1:]
for name in filter(None, hidden.split(",")):
    sys.modules[name] = None
sys.path.insert(0, str(__import__("pathlib").Path(script).parent))
sys.argv = [script, *args]
runpy.run_path(script, run_name="__main__")
"""


def run_example(name, *args, hide=(), env=None):
    # One thread: torch's OpenMP team, spinning on a busy two-core machine, turns a one-second
    # run into a minute.
    env = dict(os.environ, OMP_NUM_THREADS="1", **(env or {}))
    return subprocess.run(
        [sys.executable, "-c", RUN_HIDING, ",".join(hide), str(EXAMPLES / name), *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        env=env,
    )


def test_forecast_without_torch_says_the_comparison_was_skipped():
    result = run_example("forecast_co2.py", "--epochs", "1", "--hidden", "4", hide=["torch"])
    assert result.returncode == 0, result.stderr
    assert "fastgru " in result.stdout
    assert "PyTorch comparison skipped: torch is not installed" in result.stdout


def test_forecast_with_torch_compares(torch):
    result = run_example("forecast_co2.py", "--epochs", "1", "--hidden", "4")
    assert result.returncode == 0, result.stderr
    assert "PyTorch                  test RMSE" in result.stdout


def test_forecast_keras_trains_both_layers():
    require_installed("keras", "jax")
    result = run_example(
        "forecast_co2_keras.py", "--epochs", "1", "--hidden", "4", "--train-windows", "64", env={"KERAS_BACKEND": "jax"}
    )
    assert result.returncode == 0, result.stderr
    assert "keras.layers.GRU   test RMSE" in result.stdout and "fastgru.keras.GRU  test RMSE" in result.stdout


def test_forecast_keras_without_keras_exits_with_a_clear_message():
    result = run_example("forecast_co2_keras.py", hide=["keras"])
    assert result.returncode != 0
    assert 'pip install ".[keras]"' in result.stderr


def test_classify_digits_without_scikit_learn_exits_with_a_clear_message():
    result = run_example("classify_digits.py", hide=["sklearn"])
    assert result.returncode == 1
    assert "needs scikit-learn" in result.stderr and "pip install scikit-learn" in result.stderr
    assert "Traceback" not in result.stderr


def test_torch_baseline_run_directly_says_it_is_a_helper():
    result = run_example("torch_baseline.py")
    assert result.returncode == 0, result.stderr
    assert "helper module" in result.stdout and "forecast_co2.py" in result.stdout


def test_readme_lists_every_example():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    scripts = sorted(path.name for path in EXAMPLES.glob("*.py"))
    assert scripts
    missing = [name for name in scripts if f"`{name}`" not in readme]
    assert not missing, f"README.md does not list {missing}"
