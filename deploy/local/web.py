"""`python -m deploy.local.web`: build the web console if its sources changed (tools.build_web).

The launcher runs this in a child process: the build writes the OpenAPI document from the gateway's
routes, which imports gRPC, protoc and the gateway (about 90 MB the launcher, which outlives
everything it starts, would otherwise hold for the life of the stack). Exit status: 0 built,
10 up to date, 2 no usable Node.js (said on stderr), 1 a failed build step (said on stderr).
"""

from __future__ import annotations

import sys

BUILT, UP_TO_DATE, NO_NODE, FAILED = 0, 10, 2, 1


def main() -> None:
    from tools import build_web

    try:
        built = build_web.build()
    except SystemExit:  # build_web said what is missing (Node.js 20.19+)
        raise SystemExit(NO_NODE) from None
    except Exception as exc:  # a failed npm step: its output is above
        print(f"web console: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(FAILED) from None
    raise SystemExit(BUILT if built else UP_TO_DATE)


if __name__ == "__main__":
    main()
