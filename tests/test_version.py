"""The version is written once (pyproject.toml); the build carries it into the compiled core, from
which the package reads it."""
import importlib.metadata

import fastgru
from fastgru import _core


def test_version_is_the_installed_distribution_version():
    assert fastgru.__version__ == _core.__version__ == importlib.metadata.version("fastgru")
