"""Generate Python stubs (with .pyi) for every contract under protos/ into gen/.

Also copies the googleapis protos we import (from the installed
googleapis-common-protos package) into build/proto-deps so `buf lint` works
offline. Run by `make proto`; the output is git-ignored.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import google.api
import grpc_tools
from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTOS = ROOT / "protos"
GEN = ROOT / "gen"
DEPS = ROOT / "build" / "proto-deps"
GOOGLE_DIR = Path(google.api.__path__[0]).parent  # site-packages/google
WKT_DIR = Path(grpc_tools.__path__[0]) / "_proto"
# The plugins live next to this interpreter (the virtualenv's bin/).
BIN = Path(sys.executable).parent


def copy_deps() -> None:
    for sub in ("api", "rpc", "type"):
        src = GOOGLE_DIR / sub
        dst = DEPS / "google" / sub
        dst.mkdir(parents=True, exist_ok=True)
        for proto in src.glob("*.proto"):
            shutil.copy2(proto, dst / proto.name)


def main() -> int:
    copy_deps()
    if GEN.exists():
        shutil.rmtree(GEN)
    GEN.mkdir()
    files = sorted(str(p.relative_to(PROTOS)) for p in PROTOS.rglob("*.proto"))
    if not files:
        print("no protos found", file=sys.stderr)
        return 1
    args = [
        "protoc",
        f"-I{PROTOS}",
        f"-I{DEPS}",
        f"-I{WKT_DIR}",
        f"--python_out={GEN}",
        f"--grpc_python_out={GEN}",
        f"--plugin=protoc-gen-mypy={BIN / 'protoc-gen-mypy'}",
        f"--plugin=protoc-gen-mypy_grpc={BIN / 'protoc-gen-mypy_grpc'}",
        f"--mypy_out={GEN}",
        f"--mypy_grpc_out={GEN}",
        *files,
    ]
    rc = protoc.main(args)
    if rc != 0:
        return int(rc)
    # Regular packages (not namespace ones) so `salesops` never merges with a
    # stray directory of the same name elsewhere on sys.path.
    for d in [GEN / "salesops", *(p for p in (GEN / "salesops").rglob("*") if p.is_dir())]:
        (d / "__init__.py").touch()
    (GEN / "salesops" / "py.typed").touch()
    print(f"generated stubs for {len(files)} protos into {GEN.relative_to(ROOT)}/")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
