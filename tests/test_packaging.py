"""What the installed distribution carries (the license text and an SPDX license expression), and
the smoke test that every built wheel must pass."""

import subprocess
import sys
from importlib import metadata
from pathlib import Path


def test_license_file_and_expression_are_installed():
    dist = metadata.distribution("fastgru")
    assert dist.metadata["License-Expression"] == "MIT"
    license_files = [f for f in dist.files if f.name == "LICENSE"]
    assert len(license_files) == 1
    text = license_files[0].read_text()
    assert text.startswith("MIT License") and "the fastgru authors" in text


def test_wheel_smoke_test_passes_on_the_installed_package(tmp_path):
    """tools/smoke_test.py is what tools/build_wheel.sh and cibuildwheel run on every wheel."""
    script = Path(__file__).resolve().parents[1] / "tools" / "smoke_test.py"
    result = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "smoke test passed" in result.stdout
