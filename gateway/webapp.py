"""The console under /app/ (same origin as the API: no CORS) and, embedded only, "sign in as".

The built app (web/dist, `tools/build_web.py`) is served with an SPA fallback: any /app/ path that
is not a file answers index.html, so deep links and reloads work. Hashed assets are cached for a
year; index.html and the service worker are revalidated on every load, so a new build reaches
phones at their next visit.

`GET /auth/demo-users` and `POST /auth/demo-sign-in` exist only when the deployment is embedded
AND the launcher named its demo organisation (SALESOPS_GATEWAY_DEMO_USERS_FILE): `make run`'s
sign-in page. In production the routes do not exist (404 like any unknown path): the app takes a
bearer token from the deployment's identity provider (docs/web.md).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import grpc
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response

from gateway import errors as gw_errors
from kit.auth import AuthConfig, TokenMinter
from kit.config import deployment_environment

APP_PREFIX = "/app"
DEMO_USERS_PATH = "/auth/demo-users"
DEMO_SIGN_IN_PATH = "/auth/demo-sign-in"
DIST = Path(__file__).resolve().parent.parent / "web" / "dist"
# Demo sign-in tokens live a working day, like the tokens `make run` prints.
DEMO_TOKEN_TTL = timedelta(hours=12)
_REVALIDATE = {"index.html", "sw.js", "manifest.webmanifest"}


@dataclass(frozen=True)
class DemoUser:
    user_id: str
    roles: tuple[str, ...]
    org: str
    display_name: str


def _error(code: grpc.StatusCode, message: str, status: int) -> Response:
    _, data = gw_errors.simple(code, message)
    return Response(data, status, media_type="application/json")


class WebApp:
    """Static files of the console, and the embedded demo sign-in."""

    def __init__(self, dist: Path = DIST, demo_users_file: str | None = None, tenant: str = "demo") -> None:
        self.dist = dist.resolve()
        self.tenant = tenant
        self.demo_users: dict[str, DemoUser] = {}
        self._minter: TokenMinter | None = None
        given = (
            demo_users_file
            if demo_users_file is not None
            else os.environ.get("SALESOPS_GATEWAY_DEMO_USERS_FILE", "")
        )
        if given and deployment_environment() == "embedded":
            data = json.loads(Path(given).read_text())
            self.tenant = data.get("tenant", tenant)
            self.demo_users = {
                u["user_id"]: DemoUser(
                    u["user_id"], tuple(u["roles"]), u.get("org", ""), u.get("display_name", "")
                )
                for u in data["users"]
            }

    @property
    def demo_sign_in(self) -> bool:
        return bool(self.demo_users)

    def handles(self, path: str) -> bool:
        if path == APP_PREFIX or path.startswith(APP_PREFIX + "/"):
            return True
        return self.demo_sign_in and path in (DEMO_USERS_PATH, DEMO_SIGN_IN_PATH)

    async def handle(self, request: Request) -> Response:
        path = request.url.path
        if path == DEMO_USERS_PATH:
            return self._list_users(request)
        if path == DEMO_SIGN_IN_PATH:
            return await self._sign_in(request)
        return self._static(request, path)

    def _static(self, request: Request, path: str) -> Response:
        if request.method not in ("GET", "HEAD"):
            return _error(grpc.StatusCode.UNIMPLEMENTED, f"no route for {request.method} {path}", 405)
        index = self.dist / "index.html"
        if not index.is_file():
            return _error(
                grpc.StatusCode.UNAVAILABLE,
                "the web console is not built: run `make run` (needs Node.js 20.19+) or `python tools/build_web.py`",
                503,
            )
        if path == APP_PREFIX:
            return Response(status_code=308, headers={"location": APP_PREFIX + "/"})
        relative = path[len(APP_PREFIX) + 1 :]
        candidate = (self.dist / relative).resolve() if relative else index
        if not candidate.is_relative_to(self.dist) or not candidate.is_file():
            if "." in relative.rsplit("/", 1)[-1]:  # a missing asset is a 404, not the app
                return _error(grpc.StatusCode.NOT_FOUND, f"no file {path}", 404)
            candidate = index  # a client-side route: the app decides
        if candidate.name in _REVALIDATE or candidate == index:
            cache = "no-cache"
        elif "/assets/" in candidate.as_posix():
            cache = "public, max-age=31536000, immutable"  # content-hashed names
        else:
            cache = "public, max-age=3600"
        headers = {"cache-control": cache, "x-content-type-options": "nosniff"}
        if candidate == index:
            # The app loads nothing from elsewhere; API calls go to this origin.
            headers["content-security-policy"] = (
                "default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; "
                "connect-src 'self'; worker-src 'self'; frame-ancestors 'none'; base-uri 'self'"
            )
        return FileResponse(candidate, headers=headers)

    def _list_users(self, request: Request) -> Response:
        if request.method != "GET":
            return _error(
                grpc.StatusCode.UNIMPLEMENTED, f"no route for {request.method} {DEMO_USERS_PATH}", 405
            )
        users = [
            {"userId": u.user_id, "roles": list(u.roles), "org": u.org, "displayName": u.display_name}
            for u in self.demo_users.values()
        ]
        return JSONResponse({"tenant": self.tenant, "users": users}, headers={"cache-control": "no-store"})

    async def _sign_in(self, request: Request) -> Response:
        if request.method != "POST":
            return _error(
                grpc.StatusCode.UNIMPLEMENTED, f"no route for {request.method} {DEMO_SIGN_IN_PATH}", 405
            )
        try:
            body: Any = json.loads(await request.body() or b"{}")
        except ValueError:
            return _error(grpc.StatusCode.INVALID_ARGUMENT, 'the body must be JSON: {"userId": "..."}', 400)
        user = self.demo_users.get(body.get("userId", "")) if isinstance(body, dict) else None
        if user is None:
            return _error(grpc.StatusCode.NOT_FOUND, "no such demo user", 404)
        if self._minter is None:
            self._minter = TokenMinter(AuthConfig.from_env())
        ttl = min(DEMO_TOKEN_TTL, self._minter.config.max_lifetime)
        token = self._minter.mint(user.user_id, self.tenant, list(user.roles), org=user.org, ttl=ttl)
        return JSONResponse(
            {"token": token, "expiresInSeconds": int(ttl.total_seconds())},
            headers={"cache-control": "no-store"},
        )
