"""The import contract for workflow modules names every one of them: import-linter's wildcards replace
whole modules only, so each `<name>_workflows` module is listed in pyproject.toml by hand."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CONTRACT = "Workflow modules import no I/O library (activities do the I/O)"


def test_every_workflow_module_is_under_the_import_contract() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    contracts = {c["name"]: c for c in config["tool"]["importlinter"]["contracts"]}
    listed = set(contracts[CONTRACT]["source_modules"])
    modules = {
        ".".join(p.relative_to(ROOT).with_suffix("").parts)
        for p in (ROOT / "services").glob("*/*workflows.py")
    }
    assert modules  # the glob finds the services' workflow modules
    missing = {m for m in modules if m not in listed and f"services.*.{m.rsplit('.', 1)[1]}" not in listed}
    assert not missing, f"add to the contract in pyproject.toml: {sorted(missing)}"
