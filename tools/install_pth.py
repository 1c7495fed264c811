"""Put the generated stubs (gen/) on the virtualenv's sys.path via a .pth file."""

from __future__ import annotations

import sysconfig
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

if __name__ == "__main__":
    site = Path(sysconfig.get_paths()["purelib"])
    (site / "salesops_gen.pth").write_text(f"{ROOT / 'gen'}\n")
