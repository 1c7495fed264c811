"""Build the console under web/ when its sources changed: openapi.json -> API types -> Vite build.

`make run` and the browser tests call it. Node.js 20.19+ and npm are the one prerequisite beside
Python; without them it says so and exits 2. The output (web/dist, web/src/api/schema.d.ts) is
generated, git-ignored, and rebuilt only when a source, the lock file or the contract changed.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WEB = ROOT / "web"
DIST = WEB / "dist"
OPENAPI = ROOT / "build" / "openapi.json"
STAMP = DIST / ".sources.sha256"
MIN_NODE = (20, 19)
# What the build reads: a change to any of these rebuilds.
SOURCES = (
    "src",
    "public",
    "index.html",
    "package.json",
    "package-lock.json",
    "vite.config.ts",
    "tsconfig.json",
)


def node_problem() -> str | None:
    """Why this machine cannot build the console, or None."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        return "Node.js 20.19+ with npm is needed to build the web console (web/): install it from nodejs.org or your package manager"
    out = subprocess.run([node, "--version"], capture_output=True, text=True, check=False).stdout.strip()
    try:
        major, minor = (int(p) for p in out.lstrip("v").split(".")[:2])
    except ValueError:
        return f"cannot read the Node.js version ({out!r})"
    if (major, minor) < MIN_NODE:
        return f"Node.js {out} is too old for the web console: 20.19 or newer is needed"
    return None


def write_openapi() -> bytes:
    from gateway.batch import BATCH_PATH
    from gateway.comments import load_comments
    from gateway.openapi import build_openapi
    from gateway.routes import load_routes

    doc = build_openapi(load_routes(), load_comments(), BATCH_PATH)
    data = json.dumps(doc, indent=1, sort_keys=True).encode()
    OPENAPI.parent.mkdir(parents=True, exist_ok=True)
    if not OPENAPI.exists() or OPENAPI.read_bytes() != data:
        OPENAPI.write_bytes(data)
    return data


def sources_digest(openapi: bytes) -> str:
    digest = hashlib.sha256(openapi)
    for name in SOURCES:
        path = WEB / name
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for file in files:
            if file.exists() and file.name != "schema.d.ts":
                digest.update(str(file.relative_to(WEB)).encode() + b"\0" + file.read_bytes())
    return digest.hexdigest()


def npm(*args: str) -> None:
    print(f"web: npm {' '.join(args)}", flush=True)
    subprocess.run(["npm", *args], cwd=WEB, check=True)


def build(force: bool = False) -> bool:
    """Build if needed; True when a build ran. One build at a time (parallel test workers wait)."""
    problem = node_problem()
    if problem:
        print(f"web: {problem}", file=sys.stderr)
        raise SystemExit(2)
    OPENAPI.parent.mkdir(parents=True, exist_ok=True)
    with (OPENAPI.parent / "web-build.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _build_locked(force)


def _build_locked(force: bool) -> bool:
    digest = sources_digest(write_openapi())
    if not force and STAMP.exists() and STAMP.read_text() == digest:
        return False
    lock = WEB / "package-lock.json"
    installed = WEB / "node_modules" / ".package-lock.json"
    if not installed.exists() or installed.stat().st_mtime < lock.stat().st_mtime:
        npm("ci", "--no-audit", "--no-fund")
    npm("run", "gen:api")
    npm("run", "build")
    STAMP.write_text(digest)
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--force", action="store_true", help="build even if nothing changed")
    args = parser.parse_args()
    try:
        built = build(args.force)
    except subprocess.CalledProcessError as exc:
        print(
            f"web: `{' '.join(exc.cmd)}` failed (exit {exc.returncode}); its output is above", file=sys.stderr
        )
        raise SystemExit(1) from None
    print("web: built" if built else "web: up to date", flush=True)


if __name__ == "__main__":
    main()
