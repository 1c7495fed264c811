"""Dev-token CLI, configured by the same SALESOPS_JWT_* variables as the services.

    python -m kit.tokens mint --sub rep-a1 --tenant demo --roles rep --org east/team-a [--ttl 12h]
    python -m kit.tokens mint --service leads --tenant demo
    python -m kit.tokens decode TOKEN        # verifies, then prints the claims as JSON

`mint` prints only the token on stdout, so ``TOKEN=$(python -m kit.tokens mint ...)`` works.
`decode` exits 1 and names the reason (see `kit.auth.AuthReason`) when the token is refused.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Sequence
from datetime import timedelta

from kit.auth import (
    KNOWN_ROLES,
    AuthConfig,
    AuthConfigError,
    AuthError,
    TokenMinter,
    TokenVerifier,
    parse_duration,
)


def parse_ttl(text: str) -> timedelta:
    """``90`` (seconds), ``30m``, ``12h``, ``7d``, ``1h30m``..."""
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _split(values: Sequence[str] | None) -> list[str]:
    """Flatten repeated and comma/space separated option values."""
    return [item for value in values or () for item in re.split(r"[,\s]+", value) if item]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m kit.tokens", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)

    mint = commands.add_parser("mint", help="print a signed token")
    who = mint.add_mutually_exclusive_group(required=True)
    who.add_argument("--sub", help="user id (claim sub)")
    who.add_argument("--service", metavar="NAME", help="mint a service token (sub service:NAME)")
    mint.add_argument("--tenant", required=True)
    mint.add_argument(
        "--roles",
        action="append",
        help=f"comma-separated, repeatable: {', '.join(sorted(KNOWN_ROLES))}",
    )
    mint.add_argument("--org", default="", help="org-unit path, e.g. east/team-a")
    mint.add_argument(
        "--ttl",
        type=parse_ttl,
        default=None,
        help="lifetime, e.g. 30m, 12h (default 12h, 1h for --service; at most SALESOPS_JWT_MAX_LIFETIME)",
    )
    mint.add_argument("--scope", action="append", help="partner scopes, comma/space separated, repeatable")

    decode = commands.add_parser("decode", help="verify a token and print its claims")
    decode.add_argument("token", help="the token, 'Bearer <token>', or - to read stdin")
    return parser


def _mint(args: argparse.Namespace, config: AuthConfig) -> int:
    minter = TokenMinter(config)
    if config.uses_dev_secret:
        print("note: signing with the built-in dev secret (set SALESOPS_JWT_SECRET)", file=sys.stderr)
    if args.service:
        token = minter.mint_service_token(args.service, args.tenant, ttl=args.ttl)
    else:
        roles = _split(args.roles)
        if not roles:
            print("error: --roles is required with --sub", file=sys.stderr)
            return 2
        token = minter.mint(
            args.sub,
            args.tenant,
            roles,
            org=args.org,
            ttl=args.ttl,
            scopes=_split(args.scope),
        )
    print(token)
    return 0


def _decode(args: argparse.Namespace, config: AuthConfig) -> int:
    token: str = sys.stdin.read() if args.token == "-" else args.token
    token = token.strip()
    if token[:7].lower() == "bearer ":
        token = token[7:]
    try:
        claims = TokenVerifier(config).verify_claims(token)
    except AuthError as exc:
        print(f"invalid token: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(claims, indent=2, sort_keys=True))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        config = AuthConfig.from_env()
        if args.command == "mint":
            return _mint(args, config)
        return _decode(args, config)
    except (AuthConfigError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
