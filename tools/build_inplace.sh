#!/usr/bin/env bash
# Developer build: compile the extension into python/marginkernel/ so that the source tree runs
# as is (PYTHONPATH=python) without reinstalling. Usage: tools/build_inplace.sh [python]
set -euo pipefail
cd "$(dirname "$0")/.."
py=${1:-${PYTHON:-python3}}
cmake -S . -B build/inplace -DCMAKE_BUILD_TYPE=Release -DSKBUILD=ON \
  -DPython_EXECUTABLE="$("$py" -c 'import sys; print(sys.executable)')" \
  -Dpybind11_DIR="$("$py" -m pybind11 --cmakedir)" >/dev/null
cmake --build build/inplace -j2 --target _core
cp build/inplace/_core*.so python/marginkernel/
