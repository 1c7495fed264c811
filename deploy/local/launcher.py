"""Start Redis, the Temporal dev server, the five services and the gateway; stop them on
Ctrl-C, SIGTERM or SIGHUP.

State lives under var/ (SQLite files, Temporal's database, Redis AOF), so a
second run picks up where the first stopped. A lock file keeps two launchers
from sharing one var/ at once. Once READY, a child that crashes is restarted
(deploy/local/supervisor.py); children die with the launcher; a port or a
leftover process in the way is named, with how to stop it (deploy/local/ports.py).
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO

from deploy.local import infra, ports, web
from deploy.local.demo import TENANT, demo_users
from deploy.local.supervisor import STATUS_ENV, STATUS_FILE, ChildSpec, Supervisor, die_with_parent
from kit.config import SERVICE_PORTS, SERVICES, env_int, env_str

READY_TIMEOUT = 90.0
# The launcher outlives everything it starts: what needs gRPC, an HTTP client or JWT code (waiting
# for readiness, minting the demo tokens, the seeds: deploy/local/seed.py; the console build, which
# imports the gateway's routes: deploy/local/web.py) runs in child processes, so none of it is
# imported here (launcher RSS 110-115 -> 17 MB for the life of the stack).


# The dev server's Go heap is collected when it has grown by half since the last collection, not
# doubled (Go's default, GOGC=100): its RSS 307-320 -> 263-272 MB (bench memory). A proportional
# setting, not a GOMEMLIMIT: a fixed limit below the live heap of many open workflows would have the
# collector run without pause. Not in infra.TEMPORAL_ENV: benchmarks' and tests' dev servers keep
# Go's defaults.
TEMPORAL_GO_ENV = {"GOGC": "50"}

_PICKED: set[int] = set()  # ports this launcher chose and its children have not bound yet


def _port(name: str, default: int, auto: bool) -> int:
    """The port named by `name` in the environment (it must be free), else `default` unless
    it is taken or `auto`, else a free one. Whoever holds a port in the way is named."""
    value = env_int(name, 0)
    if value:
        if infra.port_open("127.0.0.1", value):
            raise SystemExit(f"salesops: {name}={value}, but {ports.explain(value)}")
        return value
    if not auto and infra.port_open("127.0.0.1", default):
        value = infra.free_port(exclude=_PICKED)
        held = ", ".join(str(h) for h in ports.holders(default)) or "a process of another user"
        print(f"  port {default} ({name}) is held by {held}; using {value} instead", flush=True)
    elif not auto:
        return default
    else:
        value = infra.free_port(exclude=_PICKED)
    _PICKED.add(value)
    return value


def port_variables() -> list[str]:
    return [
        "SALESOPS_LOCAL_REDIS_PORT",
        "SALESOPS_TEMPORAL_PORT",
        "SALESOPS_TEMPORAL_UI_PORT",
        *(f"SALESOPS_{name.upper()}_PORT" for name in SERVICES),
        "SALESOPS_GATEWAY_PORT",
    ]


def refuse_taken_ports() -> None:
    """Ports set in the environment must be free: say so before starting anything."""
    for name in port_variables():
        value = env_int(name, 0)
        if value and infra.port_open("127.0.0.1", value):
            raise SystemExit(f"salesops: {name}={value}, but {ports.explain(value)}")


def leftovers(var: Path) -> list[tuple[str, int]]:
    """Children of an earlier launcher on this var/ that still run (it died without stopping
    them): they hold the SQLite files, Redis's AOF, Temporal's database and their ports."""
    try:
        status = json.loads((var / STATUS_FILE).read_text())
        children = dict(status.get("children", {}))
    except (OSError, ValueError, AttributeError):
        return []
    found: list[tuple[str, int]] = []
    for name, child in children.items():
        if not isinstance(child, dict):
            continue
        pid, argv = child.get("pid"), child.get("cmd")
        if isinstance(pid, int) and isinstance(argv, list) and ports.alive_with_cmdline(pid, argv):
            found.append((name, pid))
    return found


def refuse_leftovers(var: Path) -> None:
    found = leftovers(var)
    if found:
        names = "\n".join(f"  {name:<12} pid {pid}  {ports.cmdline(pid)}" for name, pid in found)
        pids = " ".join(str(pid) for _, pid in found)
        raise SystemExit(
            f"salesops: processes of an earlier `make run` on {var} are still running:\n{names}\n"
            f"stop them with `kill {pids}` (they stop in a few seconds), then run again"
        )


def _external_redis() -> str | None:
    url = os.environ.get("SALESOPS_REDIS_URL") or os.environ.get("REDIS_URL")
    if not url:
        return None
    import redis as redis_sync  # only to check an operator's Redis, once

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
        self.supervisor = Supervisor(var / STATUS_FILE)
        # glibc gives each thread that allocates its own malloc arena (up to 8 per core); our
        # processes run many threads (a SQLite connection is one), and the arenas held about 90 MB
        # more of the stack's RSS (bench memory: 1,602 -> 1,505 MB after load). An operator's own
        # setting wins.
        self.env = {"MALLOC_ARENA_MAX": "2", **os.environ}

    def _adopt(self, server: infra.Managed, env: dict[str, str] | None = None) -> None:
        spec = ChildSpec(server.name, server.argv, server.address, env, server.log_path, tier=0)
        self.supervisor.adopt(spec, server.proc)

    def start_infra(self) -> tuple[str, str, str]:
        url = _external_redis()
        if url is None:
            port = _port("SALESOPS_LOCAL_REDIS_PORT", 6390, self.auto)
            server = infra.start_redis(
                self.var / "redis", port, persist=True, log_dir=self.logs, die_with_parent=True
            )
            self._adopt(server)
            url = server.address
        temporal_port = _port("SALESOPS_TEMPORAL_PORT", 7233, self.auto)
        ui_port = _port("SALESOPS_TEMPORAL_UI_PORT", 8233, self.auto)
        env = {**TEMPORAL_GO_ENV, **os.environ, **infra.TEMPORAL_ENV}  # an operator's GOGC wins
        temporal = infra.start_temporal_dev(
            self.var / "temporal.db", temporal_port, ui_port, log_dir=self.logs, die_with_parent=True, env=env
        )
        self._adopt(temporal, env)
        return url, temporal.address, temporal.extra.get("ui", "")

    def _spawn(self, name: str, args: list[str], env: dict[str, str], address: str, tier: int) -> None:
        log = self.logs / f"{name}.log"
        self.supervisor.start(ChildSpec(name, [sys.executable, *args], address, env, log, tier))

    def start_platform(self, redis: str, temporal: str) -> tuple[dict[str, str], str]:
        env = {
            **self.env,
            "SALESOPS_VAR_DIR": str(self.var),
            "SALESOPS_REDIS_URL": redis,
            "SALESOPS_TEMPORAL_ADDRESS": temporal,
            "SALESOPS_ENV": env_str("SALESOPS_ENV", "embedded"),
        }
        if env["SALESOPS_ENV"] == "embedded":
            # The demo outbound webhook subscription posts to this machine (kit.net.policy; production refuses it).
            env.setdefault("SALESOPS_OUTBOUND_ALLOW_LOOPBACK", "1")
        # The integration service's embedded demo ERP listens too: with --auto-ports it gets a free
        # port like everything else (parallel stacks, e.g. test workers, would collide on 8097).
        erp_port = str(_port("SALESOPS_DEMO_ERP_PORT", 8097, self.auto))
        env["SALESOPS_DEMO_ERP_PORT"] = os.environ["SALESOPS_DEMO_ERP_PORT"] = erp_port
        addresses: dict[str, str] = {}
        for name in SERVICES:
            port = _port(f"SALESOPS_{name.upper()}_PORT", SERVICE_PORTS[name], self.auto)
            addresses[name] = f"127.0.0.1:{port}"
            env[f"SALESOPS_{name.upper()}_PORT"] = str(port)
            env[f"SALESOPS_{name.upper()}_ADDR"] = addresses[name]
        gw_port = _port("SALESOPS_GATEWAY_PORT", 8080, self.auto)
        # The demo seed (this process) points the demo outbound subscription at this gateway.
        os.environ["SALESOPS_DEMO_GATEWAY_URL"] = f"http://127.0.0.1:{gw_port}"
        for name in SERVICES:
            self._spawn(name, ["-m", f"services.{name}", "--role", "all"], env, addresses[name], tier=1)
        gw_env = {
            **env,
            "SALESOPS_GATEWAY_PORT": str(gw_port),
            STATUS_ENV: str(self.supervisor.status_path),  # /readyz shows each child's restarts
        }
        if env["SALESOPS_ENV"] == "embedded":  # the console's "sign in as" page lists these users
            gw_env["SALESOPS_GATEWAY_DEMO_USERS_FILE"] = str(_write_demo_users(self.var))
        self._spawn("gateway", ["-m", "gateway"], gw_env, f"127.0.0.1:{gw_port}", tier=2)
        return addresses, f"http://127.0.0.1:{gw_port}"

    def stop(self) -> None:
        self.supervisor.stop(timeout=20)


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
    # The seeds' child processes (the demo history writes the pipeline database) use the stack's state.
    os.environ["SALESOPS_VAR_DIR"] = str(var)
    lock = _lock(var)
    refuse_leftovers(var)
    refuse_taken_ports()
    stack = Stack(var, args.auto_ports)
    steps: list[subprocess.Popen[bytes]] = []  # the start step and the demo history's writer
    stopping = False

    def on_signal(_sig: int, _frame: object) -> None:
        nonlocal stopping
        if stopping:
            return
        stopping = True
        raise KeyboardInterrupt

    # SIGHUP (the terminal closed, the ssh session dropped) stops as Ctrl-C does. SIGINT is set
    # too: started from a shell that ignores it (a `&` job without job control), Python leaves it
    # ignored and Ctrl-C / `kill -INT` would not stop the stack.
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)
    code = 0
    try:
        print(f"salesops: starting the local stack (state in {var})", flush=True)
        console = build_console()
        print(f"  web console  {console}", flush=True)
        redis, temporal, ui = stack.start_infra()
        print(f"  redis        {redis}\n  temporal     {temporal}  (UI {ui})", flush=True)
        since = time.time()
        addresses, gateway = stack.start_platform(redis, temporal)
        tokens, took = _start_step(stack, addresses, gateway, since, steps)
        _summary(addresses, gateway, ui, redis, tokens, took)
        if args.tokens_file:
            args.tokens_file.write_text(
                json.dumps({"gateway": gateway, "services": addresses, "tokens": tokens}, indent=2)
            )
        stack.supervisor.arm()
        print("READY (Ctrl-C stops everything; a crashed component is restarted)", flush=True)
        if env_str("SALESOPS_DEMO_HISTORY", "1") == "0":
            # Tests that never look at it skip a minute of writes behind every stack they start.
            print("demo history: skipped (SALESOPS_DEMO_HISTORY=0)", flush=True)
        else:
            steps.append(_start_backfill(addresses, tokens))
        while True:
            stack.supervisor.poll()
            time.sleep(0.2)
    except KeyboardInterrupt:
        print("\nstopping...", flush=True)
    except (RuntimeError, TimeoutError) as exc:
        print(f"salesops: {exc}\nlogs are in {stack.logs}", file=sys.stderr, flush=True)
        code = 1
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)
        for step in steps:  # a stop half-way is finished by the next start
            _end(step)
        stack.stop()
        lock.close()
        print("stopped.", flush=True)
    raise SystemExit(code)


def _write_demo_users(var: Path) -> Path:
    path = var / "demo-users.json"
    users = [
        {"user_id": u.user_id, "roles": list(u.roles), "org": u.org, "display_name": u.display_name}
        for u in demo_users()
    ]
    path.write_text(json.dumps({"tenant": TENANT, "users": users}, indent=1))
    return path


def build_console() -> str:
    """Build the web console if its sources changed, in a child process (deploy/local/web.py);
    a missing Node.js is said, not fatal."""
    if env_str("SALESOPS_WEB_BUILD", "1") == "0":
        return "not built (SALESOPS_WEB_BUILD=0)"
    # Dies with the launcher (a kill -9 mid-build leaves no build behind), as every child does.
    code = subprocess.run(
        [sys.executable, "-m", "deploy.local.web"], check=False, preexec_fn=die_with_parent()
    ).returncode
    if code in (web.BUILT, web.UP_TO_DATE):
        return "built" if code == web.BUILT else "up to date"
    if code == web.NO_NODE:  # what is missing is said above
        return "NOT BUILT: Node.js 20.19+ with npm is needed for the console (see above); the API runs without /app/"
    return f"NOT BUILT (exit {code}; the error is above); the API runs without /app/"


class _Step(subprocess.Popen[bytes]):
    def wait_done(self, what: str) -> None:
        if self.wait() != 0:
            raise RuntimeError(f"{what} failed (exit {self.returncode}; its error is above)")


def _seed_step(step: str, given: dict[str, object], pass_fds: tuple[int, ...] = ()) -> _Step:
    """A seed step in a child process (deploy/local/seed.py): the launcher stays small (no service
    code in it for the life of the stack), the child inherits the stack's environment."""
    argv = [sys.executable, "-m", "deploy.local.seed", step, *map(str, pass_fds)]
    # Dies with the launcher: an orphaned start step would seed the next start's stack beside it.
    proc = _Step(argv, stdin=subprocess.PIPE, pass_fds=pass_fds, preexec_fn=die_with_parent())
    assert proc.stdin is not None
    proc.stdin.write(json.dumps(given).encode())
    proc.stdin.close()
    return proc


def _start_step(
    stack: Stack, addresses: dict[str, str], gateway: str, since: float, steps: list[subprocess.Popen[bytes]]
) -> tuple[dict[str, str], float]:
    """Wait for every service and the gateway, mint the demo tokens and seed, in a child process
    (it prints each service's SERVING line); meanwhile a child of the stack that exits fails the
    start. The demo tokens and the seconds from `since` to ready."""
    read, write = os.pipe()
    given = {"addresses": addresses, "gateway": gateway, "since": since, "timeout": READY_TIMEOUT}
    try:
        proc = _seed_step("start", given, pass_fds=(write,))
    finally:
        os.close(write)
    steps.append(proc)
    with os.fdopen(read, "rb") as result:
        while proc.poll() is None:
            stack.supervisor.poll()  # not armed yet: a child that exits fails the start
            time.sleep(0.2)
        proc.wait_done("stack start and demo seed")
        answer = json.loads(result.read())
    steps.remove(proc)
    return dict(answer["tokens"]), float(answer["took"])


def _end(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _start_backfill(addresses: dict[str, str], tokens: dict[str, str]) -> _Step:
    """Backdated demo history takes about a minute on SQLite: write it behind READY, not before.
    Every step checks what is already there, so a stop half-way is finished by the next start."""
    proc = _seed_step("backfill", {"addresses": addresses, "tokens": tokens})

    def report() -> None:
        code = proc.wait()
        if code == 0:
            print("demo history: ready", flush=True)
        elif code > 0:  # the platform stays up; the history is finished on the next start
            print(f"demo history: not finished (exit {code}; its error is above)", flush=True)

    threading.Thread(target=report, name="demo-backfill", daemon=True).start()
    return proc


def _summary(
    addresses: dict[str, str], gateway: str, ui: str, redis: str, tokens: dict[str, str], took: float
) -> None:
    print(f"\nsalesops is up in {took:.1f}s; tenant '{TENANT}'")
    print(f"  gateway      {gateway}   (/healthz, /readyz)")
    print(f"  console      {gateway}/app/   (sign in as any demo user)")
    for name, addr in addresses.items():
        print(f"  {name:<12} grpc://{addr}")
    print(f"  temporal UI  {ui}")
    print(f"  redis        {redis}")
    print("\ndemo users (Authorization: Bearer <token>, valid SALESOPS_JWT_MAX_LIFETIME, 12 h by default):")
    for user in demo_users():
        print(f"  {user.user_id:<14} {','.join(user.roles):<11} {user.org or '-':<12} {tokens[user.user_id]}")
    print(flush=True)
