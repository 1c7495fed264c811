#!/bin/sh
# Final stage of the image (Dockerfile), also run by tests/deploy/test_image_install.py.
#
#   install.sh WHEEL_DIR PREFIX
#
# Installs salesops, its generated stubs and its dependencies from WHEEL_DIR only
# (--no-index: nothing is fetched or compiled) into a virtualenv at PREFIX, compiles
# the bytecode now (the container's root filesystem is read-only), removes pip and
# setuptools from it, and checks that every entry point imports.
set -eu

if [ "$#" -ne 2 ]; then
    echo "usage: $0 WHEEL_DIR PREFIX" >&2
    exit 2
fi
python=${PYTHON:-python3}
wheels=$(cd "$1" && pwd)

"$python" -m venv "$2"
prefix=$(cd "$2" && pwd)
"$prefix/bin/python" -m pip install --quiet --no-index --find-links "$wheels" salesops salesops-contracts
"$prefix/bin/python" -m pip uninstall --quiet --yes pip setuptools wheel

# Every process the image runs: five services (API and worker), their migrations, the gateway.
"$prefix/bin/python" - <<'PY'
import importlib

from kit.config import SERVICES

modules = ["gateway.__main__", "kit.migrations", "salesops"]
modules += [f"services.{name}.__main__" for name in SERVICES]
modules += [f"services.{name}.app" for name in SERVICES]
for module in modules:
    importlib.import_module(module)
PY
test -x "$prefix/bin/temporal"  # the dev overlay's Temporal dev server runs from this image
echo "salesops installed in $prefix"
