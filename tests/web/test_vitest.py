"""The console's unit tests (Vitest, in Node): the offline queue, the message catalogues, ..."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from tools import build_web

pytestmark = pytest.mark.xdist_group("web")


def test_vitest_suite_passes() -> None:
    problem = build_web.node_problem()
    if problem:
        if os.environ.get("SALESOPS_TEST_REQUIRE_BROWSER") == "1":
            pytest.fail(f"the console's tests are required here, but {problem}")
        pytest.skip(problem)
    build_web.build()  # npm ci when the lock changed; the API types the sources import
    npx = shutil.which("npx")
    assert npx is not None
    done = subprocess.run(
        [npx, "vitest", "run", "--reporter=dot"],
        cwd=build_web.WEB,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "CI": "true", "NO_COLOR": "1"},
        check=False,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
