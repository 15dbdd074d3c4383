"""One version source (python/marginkernel/_version.py): Python, the wheel metadata and CMake agree."""

from __future__ import annotations

import importlib.metadata
import re
from pathlib import Path

import pytest

import marginkernel

ROOT = Path(__file__).resolve().parents[1]


def test_python_version_is_the_source():
    text = (ROOT / "python" / "marginkernel" / "_version.py").read_text()
    assert re.search(r'__version__ = "(\d+\.\d+\.\d+)"', text).group(1) == marginkernel.__version__


def test_wheel_metadata_reports_it():
    try:
        installed = importlib.metadata.version("marginkernel")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("running from the source tree, not an installed package")
    assert installed == marginkernel.__version__


def test_cmake_reads_the_same_file():
    cmake = (ROOT / "CMakeLists.txt").read_text()
    assert "python/marginkernel/_version.py" in cmake and "project(marginkernel VERSION ${MK_VERSION}" in cmake
    major_minor = ".".join(marginkernel.__version__.split(".")[:2])
    assert (
        f"find_package(marginkernel {major_minor} CONFIG REQUIRED)"
        in (ROOT / "cpp" / "tests" / "consumer" / "CMakeLists.txt").read_text()
    )


def test_changelog_has_the_version():
    assert f"## [{marginkernel.__version__}]" in (ROOT / "CHANGELOG.md").read_text()
