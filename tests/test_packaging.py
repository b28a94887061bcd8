"""What the installed distribution carries: the license text and an SPDX license expression."""

from importlib import metadata


def test_license_file_and_expression_are_installed():
    dist = metadata.distribution("fastgru")
    assert dist.metadata["License-Expression"] == "MIT"
    license_files = [f for f in dist.files if f.name == "LICENSE"]
    assert len(license_files) == 1
    text = license_files[0].read_text()
    assert text.startswith("MIT License") and "the fastgru authors" in text
