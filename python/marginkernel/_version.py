"""The package version: the one source that the wheel metadata and the CMake package read too."""

__version__ = "0.2.0"
