"""Start Redis, the Temporal dev server, the five services and the gateway; stop them on Ctrl-C.

State lives under var/ (SQLite files, Temporal's database, Redis AOF), so a
second run picks up where the first stopped. A lock file keeps two launchers
from sharing one var/ at once.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

import grpc
import httpx
import redis as redis_sync
from grpc_health.v1 import health_pb2, health_pb2_grpc

from deploy.local import infra
from deploy.local.demo import TENANT, demo_tokens, demo_users
from deploy.local.seed import seed
from kit.config import SERVICE_PORTS, SERVICES, env_int, env_str

READY_TIMEOUT = 90.0


_PICKED: set[int] = set()  # ports this launcher chose and its children have not bound yet


def _port(name: str, default: int, auto: bool) -> int:
    value = env_int(name, 0)
    if value:
        return value
    if auto or infra.port_open("127.0.0.1", default):
        value = infra.free_port(exclude=_PICKED)
        _PICKED.add(value)
        return value
    return default


def _external_redis() -> str | None:
    url = os.environ.get("SALESOPS_REDIS_URL") or os.environ.get("REDIS_URL")
    if not url:
        return None
    try:
        client = redis_sync.Redis.from_url(url, socket_connect_timeout=1)
        client.ping()
        client.close()
    except redis_sync.RedisError as exc:
        print(f"REDIS_URL {url} is not reachable ({exc}); starting a private Redis instead")
        return None
    return url


class Stack:
    def __init__(self, var: Path, auto_ports: bool) -> None:
        self.var = var
        self.logs = var / "logs"
        self.auto = auto_ports
        self.children: list[infra.Managed] = []
        self.env = dict(os.environ)

    def start_infra(self) -> tuple[str, str, str]:
        url = _external_redis()
        if url is None:
            port = _port("SALESOPS_LOCAL_REDIS_PORT", 6390, self.auto)
            server = infra.start_redis(self.var / "redis", port, persist=True, log_dir=self.logs)
            self.children.append(server)
            url = server.address
        temporal_port = _port("SALESOPS_TEMPORAL_PORT", 7233, self.auto)
        ui_port = _port("SALESOPS_TEMPORAL_UI_PORT", 8233, self.auto)
        temporal = infra.start_temporal_dev(
            self.var / "temporal.db", temporal_port, ui_port, log_dir=self.logs
        )
        self.children.append(temporal)
        return url, temporal.address, temporal.extra.get("ui", "")

    def _spawn(self, name: str, args: list[str], env: dict[str, str], address: str) -> None:
        self.logs.mkdir(parents=True, exist_ok=True)
        log: IO[bytes] = (self.logs / f"{name}.log").open("ab")
        proc = subprocess.Popen(
            [sys.executable, *args], env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.children.append(infra.Managed(name, proc, address, self.logs / f"{name}.log"))

    def start_platform(self, redis: str, temporal: str) -> tuple[dict[str, str], str]:
        env = {
            **self.env,
            "SALESOPS_VAR_DIR": str(self.var),
            "SALESOPS_REDIS_URL": redis,
            "SALESOPS_TEMPORAL_ADDRESS": temporal,
            "SALESOPS_ENV": env_str("SALESOPS_ENV", "embedded"),
        }
        addresses: dict[str, str] = {}
        for name in SERVICES:
            port = _port(f"SALESOPS_{name.upper()}_PORT", SERVICE_PORTS[name], self.auto)
            addresses[name] = f"127.0.0.1:{port}"
            env[f"SALESOPS_{name.upper()}_PORT"] = str(port)
            env[f"SALESOPS_{name.upper()}_ADDR"] = addresses[name]
        for name in SERVICES:
            self._spawn(name, ["-m", f"services.{name}", "--role", "all"], env, addresses[name])
        gw_port = _port("SALESOPS_GATEWAY_PORT", 8080, self.auto)
        self._spawn("gateway", ["-m", "gateway"], {**env, "SALESOPS_GATEWAY_PORT": str(gw_port)}, "")
        return addresses, f"http://127.0.0.1:{gw_port}"

    def check_alive(self) -> None:
        for child in self.children:
            if child.proc.poll() is not None:
                tail = ""
                if child.log_path and child.log_path.exists():
                    tail = "\n".join(child.log_path.read_text(errors="replace").splitlines()[-20:])
                raise RuntimeError(f"{child.name} exited with {child.proc.returncode}\n{tail}")

    def stop(self) -> None:
        for child in reversed(self.children):
            child.stop(timeout=20)


async def _serving(address: str) -> bool:
    async with grpc.aio.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            reply = await stub.Check(health_pb2.HealthCheckRequest(), timeout=1)
        except grpc.aio.AioRpcError:
            return False
        return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


async def wait_ready(stack: Stack, addresses: dict[str, str], gateway: str, timeout: float) -> float:
    start = time.monotonic()
    pending = dict(addresses)
    async with httpx.AsyncClient() as http:
        while time.monotonic() - start < timeout:
            stack.check_alive()
            for name, addr in list(pending.items()):
                if await _serving(addr):
                    print(f"  {name:<12} SERVING on {addr}  ({time.monotonic() - start:.1f}s)", flush=True)
                    del pending[name]
            if not pending:
                with contextlib.suppress(httpx.HTTPError):
                    if (await http.get(f"{gateway}/readyz", timeout=2)).status_code == 200:
                        return time.monotonic() - start
            await asyncio.sleep(0.25)
    raise TimeoutError(f"not ready after {timeout:.0f}s; still waiting for {sorted(pending) or ['gateway']}")


def _lock(var: Path) -> IO[str]:
    var.mkdir(parents=True, exist_ok=True)
    handle = (var / "run.lock").open("w")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise SystemExit(f"another `make run` is using {var}; stop it first") from None
    return handle


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--var", type=Path, default=Path(env_str("SALESOPS_VAR_DIR", "var")))
    parser.add_argument("--auto-ports", action="store_true", help="pick free ports for everything")
    parser.add_argument("--tokens-file", type=Path, help="also write the demo tokens here as JSON")
    args = parser.parse_args()
    var: Path = args.var.resolve()
    lock = _lock(var)
    stack = Stack(var, args.auto_ports)
    stopping = False

    def on_signal(_sig: int, _frame: object) -> None:
        nonlocal stopping
        if stopping:
            return
        stopping = True
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    code = 0
    try:
        print(f"salesops: starting the local stack (state in {var})", flush=True)
        redis, temporal, ui = stack.start_infra()
        print(f"  redis        {redis}\n  temporal     {temporal}  (UI {ui})", flush=True)
        addresses, gateway = stack.start_platform(redis, temporal)
        took = asyncio.run(wait_ready(stack, addresses, gateway, READY_TIMEOUT))
        tokens = demo_tokens()
        asyncio.run(seed(addresses, tokens))
        _summary(addresses, gateway, ui, redis, tokens, took)
        if args.tokens_file:
            args.tokens_file.write_text(
                json.dumps({"gateway": gateway, "services": addresses, "tokens": tokens}, indent=2)
            )
        print("READY (Ctrl-C stops everything)", flush=True)
        while True:
            stack.check_alive()
            time.sleep(1)
    except KeyboardInterrupt:
        print("\nstopping...", flush=True)
    except (RuntimeError, TimeoutError) as exc:
        print(f"salesops: {exc}\nlogs are in {stack.logs}", file=sys.stderr, flush=True)
        code = 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        stack.stop()
        lock.close()
        print("stopped.", flush=True)
    raise SystemExit(code)


def _summary(
    addresses: dict[str, str], gateway: str, ui: str, redis: str, tokens: dict[str, str], took: float
) -> None:
    print(f"\nsalesops is up in {took:.1f}s; tenant '{TENANT}'")
    print(f"  gateway      {gateway}   (/healthz, /readyz)")
    for name, addr in addresses.items():
        print(f"  {name:<12} grpc://{addr}")
    print(f"  temporal UI  {ui}")
    print(f"  redis        {redis}")
    print("\ndemo users (Authorization: Bearer <token>, valid SALESOPS_JWT_MAX_LIFETIME, 12 h by default):")
    for user in demo_users():
        print(f"  {user.user_id:<14} {','.join(user.roles):<11} {user.org or '-':<12} {tokens[user.user_id]}")
    print(flush=True)
