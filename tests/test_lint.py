"""Types, lint and format over the tree, as CI checks them: mypy --strict on the package (the
generated python/fastgru/_core.pyi included) and on a user's script, ruff's lint and format check
on every Python file, clang-format on every C++ file. The tools come with the `test` and `lint`
extras; each test fails, never skips, when its tool is missing."""

import pathlib
import re
import shutil
import subprocess
import sys
import sysconfig

ROOT = pathlib.Path(__file__).resolve().parent.parent
CPP_FOLDERS = ("cpp", "python/src", "bench", "tests/cpp", "examples/cpp")
CPP_SUFFIXES = (".h", ".hpp", ".cc", ".cpp")


def run(*command, cwd=ROOT):
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=900)


def test_mypy_strict_on_the_package():
    result = run(sys.executable, "-m", "mypy", "--strict", "python/fastgru")
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_users_script_type_checks_strictly_and_predict_is_an_ndarray():
    """The installed package's annotations and stub, as a user's mypy sees them (run outside the
    checkout, so that python/fastgru is not what `import fastgru` finds)."""
    script = ROOT / "tests" / "typing" / "user_script.py"
    result = run(sys.executable, "-m", "mypy", "--strict", "--no-incremental", str(script), cwd=script.parent)
    assert result.returncode == 0, result.stdout + result.stderr
    revealed = re.findall(r'Revealed type is "(.*)"', result.stdout)
    arrays, scalars = revealed[:5], revealed[5:]
    assert len(arrays) == 5 and all(t.startswith("numpy.ndarray[") for t in arrays), revealed
    assert "floating" in arrays[0] and "floating" in arrays[2], revealed  # predict, predict_proba
    assert all(t in ("float", "builtins.float") for t in scalars) and len(scalars) == 2, revealed
    ran = run(sys.executable, str(script), cwd=script.parent)
    assert ran.returncode == 0, ran.stderr


def test_ruff_lint():
    result = run(sys.executable, "-m", "ruff", "check", "--no-cache", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format():
    result = run(sys.executable, "-m", "ruff", "format", "--check", "--no-cache", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_clang_format():
    files = sorted(
        str(p.relative_to(ROOT))
        for folder in CPP_FOLDERS
        for p in (ROOT / folder).rglob("*")
        if p.suffix in CPP_SUFFIXES and "third_party" not in p.parts  # vendored: kept as published
    )
    assert len(files) > 50, files
    # The PyPI package's (the version the extras pin), before any other on PATH.
    beside_python = pathlib.Path(sysconfig.get_path("scripts")) / "clang-format"
    clang_format = str(beside_python) if beside_python.exists() else shutil.which("clang-format")
    assert clang_format, 'clang-format: not installed (pip install ".[lint]")'
    result = run(clang_format, "--dry-run", "-Werror", *files)
    assert result.returncode == 0, result.stdout + result.stderr[-5000:]
