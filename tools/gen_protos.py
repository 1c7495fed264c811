"""Generate Python stubs (with .pyi) for every contract under protos/ into gen/.

Also copies the googleapis protos we import (from the installed
googleapis-common-protos package) into build/proto-deps so `buf lint` works
offline. Run by `make proto`; the output is git-ignored.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import google.api
import grpc_tools  # type: ignore[import-untyped]
from grpc_tools import protoc  # type: ignore[import-untyped]

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
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=GEN, help="output directory (default gen/)")
    out: Path = parser.parse_args().out.resolve()
    copy_deps()
    generate(out)
    return 0


def generate(out: Path) -> None:
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    files = sorted(str(p.relative_to(PROTOS)) for p in PROTOS.rglob("*.proto"))
    if not files:
        raise SystemExit("no protos found")
    args = [
        "protoc",
        f"-I{PROTOS}",
        f"-I{DEPS}",
        f"-I{WKT_DIR}",
        f"--python_out={out}",
        f"--grpc_python_out={out}",
        f"--plugin=protoc-gen-mypy={BIN / 'protoc-gen-mypy'}",
        f"--plugin=protoc-gen-mypy_grpc={BIN / 'protoc-gen-mypy_grpc'}",
        f"--mypy_out=quiet:{out}",
        f"--mypy_grpc_out=quiet:{out}",
        *files,
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    # Regular packages (not namespace ones) so `salesops` never merges with a
    # stray directory of the same name elsewhere on sys.path.
    for d in [out / "salesops", *(p for p in (out / "salesops").rglob("*") if p.is_dir())]:
        (d / "__init__.py").touch()
    (out / "salesops" / "py.typed").touch()
    print(f"generated stubs for {len(files)} protos into {out}")


if __name__ == "__main__":
    raise SystemExit(main())
