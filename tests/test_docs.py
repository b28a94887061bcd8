"""help() is enough: the public classes and functions carry their contract in their docstrings
(every constructor argument, shapes, equations), and README.md's GRU signature is the real one."""

import inspect
import re
from pathlib import Path

import pytest

import fastgru

README = Path(__file__).resolve().parents[1] / "README.md"


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
    for fragment in ("(T, B, I)", "(B, T, I)", "(L*D, B, H)", "(T, B, D*H)", "lengths", "float32",
                     "float64", "h' = (1 - z) * n + z * h", "reset_after=False", "ValueError", "TypeError"):
        assert fragment in doc, fragment


def test_readme_gru_signature_matches_the_code():
    text = README.read_text(encoding="utf-8")
    signature = re.search(r"layer = fastgru\.GRU\((.*?)\)\n", text, re.S).group(1)
    written = [part.split("=")[0].strip() for part in signature.split(",") if part.strip() not in ("*", "")]
    actual = [p for p in inspect.signature(fastgru.GRU.__init__).parameters if p != "self"]
    assert written == actual
