#!/bin/sh
# Build stage of the image (Dockerfile), also run by tests/deploy/test_image_install.py.
#
#   build-wheels.sh SOURCE_DIR WHEEL_DIR
#
# Fills WHEEL_DIR with every wheel the runtime needs: the salesops wheel, one wheel of
# the gRPC stubs generated from protos/ (salesops-contracts) and all dependencies, so
# the final stage installs with --no-index and needs no compiler. The stub generator
# and its plugins live in a throwaway virtualenv, never in WHEEL_DIR.
set -eu

if [ "$#" -ne 2 ]; then
    echo "usage: $0 SOURCE_DIR WHEEL_DIR" >&2
    exit 2
fi
python=${PYTHON:-python3}
src=$(cd "$1" && pwd)
mkdir -p "$2"
out=$(cd "$2" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT INT TERM

# 1. The project and every dependency, as wheels (sdists, if any, are built here).
"$python" -m pip wheel --quiet --wheel-dir "$out" "$src"

# 2. Stubs, generated with the very grpcio-tools and protobuf the runtime gets, so the
#    generated code never needs a newer protobuf than the one installed beside it.
"$python" -m venv "$work/tools"
"$work/tools/bin/pip" install --quiet --no-index --find-links "$out" grpcio-tools googleapis-common-protos
"$work/tools/bin/pip" install --quiet "mypy-protobuf>=3.6"
"$work/tools/bin/python" "$src/tools/gen_protos.py" --out "$work/contracts"

version=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$src/pyproject.toml" | head -n 1)
cat > "$work/contracts/pyproject.toml" <<TOML
[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "salesops-contracts"
version = "${version:-0.0.0}"
description = "gRPC stubs generated from the salesops contracts (protos/)"
requires-python = ">=3.11"

[tool.setuptools.packages.find]
include = ["salesops*"]

[tool.setuptools.package-data]
"*" = ["*.pyi", "py.typed"]
TOML
"$work/tools/bin/pip" wheel --quiet --no-deps --wheel-dir "$out" "$work/contracts"
echo "wheels for salesops ${version:-?} in $out: $(ls "$out" | wc -l) files"
