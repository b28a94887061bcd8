"""help() is enough: the public classes and functions carry their contract in their docstrings
(every constructor argument, shapes, equations), and the documentation's GRU signature is the
real one. The documentation site (docs/) builds with warnings as errors, its API reference taken
from those docstrings. (tests/test_readme.py runs the pages' code.)"""

import importlib.util
import inspect
import os
import re
import subprocess
import sys
import types
from pathlib import Path

import pytest

import fastgru

ROOT = Path(__file__).resolve().parents[1]
LAYER_PAGE = ROOT / "docs" / "layer-and-model.md"


@pytest.mark.parametrize("name", fastgru.__all__)
def test_public_names_are_documented_in_the_package(name):
    doc = inspect.getdoc(getattr(fastgru, name)) if name != "__version__" else "a string"
    assert doc, f"fastgru.{name} has no docstring"
    assert "README" not in doc, f"fastgru.{name} sends the reader to a file that is not installed"


@pytest.mark.parametrize("cls", [fastgru.GRU, fastgru.Dense, fastgru.Adam])
def test_class_docstring_names_every_constructor_argument(cls):
    doc = cls.__doc__
    for argument in inspect.signature(cls.__init__).parameters:
        if argument != "self":
            assert re.search(rf"\b{argument}\b", doc), f"{cls.__name__}'s docstring does not mention {argument}"


def test_gru_docstring_has_shapes_and_equations():
    doc = fastgru.GRU.__doc__
    for fragment in (
        "(T, B, I)",
        "(B, T, I)",
        "(L*D, B, H)",
        "(T, B, D*H)",
        "lengths",
        "float32",
        "float64",
        "h' = (1 - z) * n + z * h",
        "reset_after=False",
        "ValueError",
        "TypeError",
    ):
        assert fragment in doc, fragment


def test_docs_gru_signature_matches_the_code():
    text = LAYER_PAGE.read_text(encoding="utf-8")
    signature = re.search(r"layer = fastgru\.GRU\((.*?)\)\n", text, re.S).group(1)
    written = [part.split("=")[0].strip() for part in signature.split(",") if part.strip() not in ("*", "")]
    actual = [p for p in inspect.signature(fastgru.GRU.__init__).parameters if p != "self"]
    assert written == actual


def test_docs_build_with_warnings_as_errors(tmp_path):
    """sphinx-build -W: a broken reference, an unreadable figure, a page outside the table of contents
    or a docstring autodoc cannot import fails the build."""
    missing = [name for name in ("sphinx", "myst_parser") if importlib.util.find_spec(name) is None]
    if missing and not os.environ.get("CI"):
        pytest.skip(f'needs {", ".join(missing)} (pip install ".[docs]")')
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "sphinx",
            "-W",
            "--keep-going",
            "-q",
            "-E",
            "-b",
            "html",
            "-d",
            str(tmp_path / "doctrees"),
            str(ROOT / "docs"),
            str(tmp_path / "html"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    api = (tmp_path / "html" / "api.html").read_text(encoding="utf-8")
    for name in fastgru.__all__:
        if name != "__version__":
            # a module (fastgru.convert) is documented by automodule, whose anchor says so
            anchor = (
                f"module-fastgru.{name}" if isinstance(getattr(fastgru, name), types.ModuleType) else f"fastgru.{name}"
            )
            assert f'id="{anchor}"' in api, f"the API reference lacks fastgru.{name}"
    assert "(L*D, B, H)" in api  # the GRU's docstring, shapes included
    speed = (tmp_path / "html" / "speed.html").read_text(encoding="utf-8")
    assert speed.count("<img") >= 5
