"""Sphinx configuration of fastgru's documentation: Markdown pages (MyST) and an API reference
generated from the docstrings of the installed package.

    pip install ".[docs]" && python -m sphinx -W --keep-going -b html docs docs/_build/html

The docstrings are written for help(): plain text whose indentation carries meaning (signatures,
shapes, equations). Docstrings in NumPy style (with a "Parameters" section underlined by dashes)
go to napoleon; all others are shown verbatim, as help() shows them, instead of being parsed as
reStructuredText (which would reflow the equations and warn about their indentation).
"""

from __future__ import annotations

import inspect
import re
from typing import Any

import fastgru

project = "fastgru"
author = "fastgru developers"
copyright = "fastgru developers"
release = fastgru.__version__
version = release

extensions = ["myst_parser", "sphinx.ext.autodoc", "sphinx.ext.napoleon"]
source_suffix = {".md": "markdown"}
exclude_patterns = ["_build"]
myst_heading_anchors = 3
myst_enable_extensions = ["colon_fence"]

napoleon_google_docstring = False
napoleon_numpy_docstring = True
autodoc_member_order = "bysource"
autoclass_content = "both"  # the estimators list their hyper-parameters in __init__
autodoc_default_options = {"members": True, "undoc-members": False}
autodoc_typehints = "signature"

html_theme = "alabaster"
html_title = f"fastgru {release}"
html_static_path: list[str] = []

NUMPY_SECTION = re.compile(r"^\s*(Parameters|Returns|Raises|Attributes|Examples)\n\s*-{3,}\s*$", re.M)


def docstring_verbatim(app: Any, what: str, name: str, obj: Any, options: Any, lines: list[str]) -> None:
    """Shows a plain-text docstring as a literal block (see the module docstring)."""
    if not lines or NUMPY_SECTION.search("\n".join(lines)):
        return
    text = inspect.cleandoc("\n".join(lines))
    lines[:] = ["::", ""] + ["    " + line if line else "" for line in text.splitlines()] + [""]


def setup(app: Any) -> None:
    # Runs before napoleon's handler (priority 500), which then finds a literal block only.
    app.connect("autodoc-process-docstring", docstring_verbatim, priority=400)
