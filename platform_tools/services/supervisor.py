"""`parhelion up`: run the whole platform on this machine, in the foreground.

Everything that can be wrong is checked before the first process starts: the
configuration (every error, with file, line and field), the state directory lock (one
platform per state directory), node and configurable-http-proxy, and the ports. Then
the archive is verified or seeded, the services start in order, and the supervisor
waits. SIGINT or SIGTERM stops every service in reverse order and sweeps any process
left behind.

When a service dies: a restartable one (the accounting service, the hub, the culler) is started
again at once, at most ``RestartPolicy.max_restarts`` times in ``window_seconds``; any
other one (S3, the gateway), or a restartable one in a crash loop, takes the
platform down with a pointer to its log. Throughout, the supervisor reaps the orphans it
inherits as a subreaper (``processes.Reaper``): a killed hub's proxy and servers are
re-parented to it, and unreaped they stay zombies that a restarted hub takes for alive.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import signal
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, fields
from pathlib import Path

from platform_tools.config import ConfigError, PlatformConfig, load_platform
from platform_tools.local.accounts import startup_problem
from platform_tools.local.archive import ArchiveSeeder
from platform_tools.local.cgroups import enforcement, remove_platform_groups, unenforced_warning
from platform_tools.local.kernels import socket_base
from platform_tools.local.runtime import LocalRuntime, Ports
from platform_tools.local.servergroup import dask_group_base, group_base
from platform_tools.local.statedir import PRIVATE_UMASK, AlreadyRunning, StateDir
from platform_tools.pricing.catalog import PriceError
from platform_tools.pricing.node import configured_node
from platform_tools.services.banner import banner, issue_admin_passwords
from platform_tools.services.local import (
    Service,
    accounting_service,
    culler_service,
    gateway_service,
    hub_service,
    s3_service,
)
from platform_tools.services.processes import (
    Reaper,
    StartupError,
    become_subreaper,
    free_tcp_ports,
    stop_descendants,
    tcp_port_free,
)

log = logging.getLogger("parhelion")

REPO_ROOT = Path(__file__).resolve().parents[2]

#: Generated on first start, kept in secrets/; passwords are printed once.
SECRETS = {
    "proxy-auth-token": lambda: secrets.token_hex(32),
    "gateway-api-token": lambda: secrets.token_hex(32),
    "culler-api-token": lambda: secrets.token_hex(32),
    "accounting-api-token": lambda: secrets.token_hex(32),
    "s3-access-key": lambda: "parhelion" + secrets.token_hex(8),
    "s3-secret-key": lambda: secrets.token_hex(20),
    # SharedPasswordAuthenticator: >= 8 characters for users, >= 32 for admins.
    "user-password": lambda: secrets.token_urlsafe(12),
    "admin-password": lambda: secrets.token_urlsafe(24),
}


class LaunchError(RuntimeError):
    """A problem found before or while starting; its message is for a person."""


@dataclass
class UpOptions:
    config: Path
    state_dir: Path | None = None
    hub_port: int | None = None
    free_ports: bool = False  # ignore configured ports (tests, a second platform)
    sample_files: int | None = None  # overrides local archives' sample_files
    hub_config_dir: Path = REPO_ROOT / "hub_config"
    notebooks_dir: Path = REPO_ROOT / "notebooks"


def run_up(options: UpOptions) -> int:
    """Run the platform until a signal; the process exit code."""
    try:
        platform = load_platform(options.config)
    except ConfigError as exc:
        print(f"parhelion up: {options.config} is not valid; nothing was started:", file=sys.stderr)
        for issue in exc.issues:
            print(f"  {issue}", file=sys.stderr)
        return 1
    state = StateDir(options.state_dir or platform.local.state_dir)
    spawner = platform.local_spawner  # decided once: recorded in runtime.json for every service
    refused = startup_problem(platform, spawner, state.root)
    if refused:
        print(f"parhelion up: {refused}. Nothing was started.", file=sys.stderr)
        return 1
    # Every file the platform and its services make (ledger, logs, runtime.json) is private.
    os.umask(PRIVATE_UMASK)
    try:
        state.prepare(traversable=spawner == "system-users")
        state.acquire()
    except AlreadyRunning as exc:
        print(f"parhelion up: {exc}", file=sys.stderr)
        return 1
    try:
        with socket_base() as kernel_sockets:
            return _run_locked(platform, options, state, kernel_sockets)
    except LaunchError as exc:
        print(f"parhelion up: {exc}", file=sys.stderr)
        return 1
    finally:
        state.release()


def _run_locked(platform: PlatformConfig, options: UpOptions, state: StateDir, kernel_sockets: Path) -> int:
    """Everything checked and prepared, then the services run until a signal or a death."""
    runtime, new_secrets = prepare(platform, options, state, kernel_sockets)
    admins = issue_admin_passwords(platform, state)  # before the hub answers anyone
    supervisor = Supervisor(runtime, state, planned_services(platform, runtime, state))
    return supervisor.run(lambda: print(banner(platform, runtime, state, new_secrets, admins), flush=True))


def prepare(
    platform: PlatformConfig, options: UpOptions, state: StateDir, kernel_sockets: Path
) -> tuple[LocalRuntime, set[str]]:
    """Checks, the live configuration, secrets, archives and runtime.json: all before any start.

    Returns the runtime and the names of the secrets made now (their passwords are printed once).
    """
    proxy_command = find_proxy_command()
    check_prices(platform, state)
    ports = resolve_ports(platform, options)
    kept = install_config(options.config, state)
    if kept is not None:
        log.warning(
            "the live platform.yaml differed from %s (changes made while the platform ran, e.g. by "
            "the Ansible quotas or roster plays?); it is kept as %s - apply what should stay to %s",
            options.config,
            kept,
            options.config,
        )
    new_secrets = {name for name, make in SECRETS.items() if state.secret(name, make)[1]}
    seed_archives(platform, options, state)
    spawner = platform.local_spawner  # decided once, here, for every service (runtime.json)
    limits = enforcement(system_users=spawner == "system-users")
    if unenforced_warning(limits):
        log.warning("%s", unenforced_warning(limits))
    runtime = LocalRuntime(
        limits=limits,
        state_dir=str(state.root),
        hub_config_dir=str(options.hub_config_dir.resolve()),
        notebooks_dir=str(options.notebooks_dir.resolve()),
        proxy_command=proxy_command,
        public_host="127.0.0.1",
        ports=ports,
        supervisor_pid=os.getpid(),
        started_at=time.time(),
        kernel_socket_dir=str(kernel_sockets),
        spawner=spawner,
    )
    runtime.save(state.runtime_file)
    return runtime, new_secrets


def seed_archives(platform: PlatformConfig, options: UpOptions, state: StateDir) -> None:
    """Every local archive verified, or seeded when missing or damaged."""
    for archive in platform.archives.values():
        if archive.local is not None:
            settings = archive.local
            if options.sample_files is not None:
                settings = settings.model_copy(update={"sample_files": options.sample_files})
            ArchiveSeeder(
                state.archive, state.seed, state.quarantine, state.tmp, archive.bucket, settings
            ).ensure()


def planned_services(platform: PlatformConfig, runtime: LocalRuntime, state: StateDir) -> list[Service]:
    """The services to start, in order: S3, then the gateway and the accounting service (the
    hub stalls ~31 s at start on a registered service that does not answer), the hub, and
    the culler."""
    services: list[Service] = []
    if any(archive.local for archive in platform.archives.values()):
        keyed = any(a.access == "keyed" for a in platform.archives.values() if a.local)
        services.append(s3_service(runtime, state, keyed))
    if platform.dask_gateway.enabled:
        services.append(gateway_service(runtime, state))
    if platform.accounting.enabled:
        services.append(accounting_service(runtime, state))
    services.append(hub_service(runtime, state))
    if platform.hub.cull_idle_servers_after_minutes:
        services.append(culler_service(runtime, state, platform.hub.cull_idle_servers_after_minutes))
    return services


@dataclass(frozen=True)
class RestartPolicy:
    """How often a restartable service is started again before the platform gives up.

    Five restarts in ten minutes: a service killed now and then (the OOM killer, an admin's
    kill -9) comes back each time within seconds; one that dies as soon as it starts (a
    broken configuration, a damaged file) stops the platform after five tries instead of
    looping for ever while its log scrolls away.
    """

    max_restarts: int = 5
    window_seconds: float = 600.0


class Supervisor:
    """Starts services in order, watches them, restarts the restartable ones, and stops them
    all (and any orphan) at the end."""

    def __init__(
        self,
        runtime: LocalRuntime,
        state: StateDir,
        services: list[Service],
        policy: RestartPolicy = RestartPolicy(),
    ):
        self.runtime = runtime
        self.state = state
        self.services = services
        self.policy = policy
        self.started: list[Service] = []
        self.restarts: dict[str, deque[float]] = {}
        self.stop = threading.Event()
        self.received: list[int] = []
        self.reaper = Reaper(self._own_pids)

    def _own_pids(self) -> set[int]:
        """The services' pids: their Popen objects reap them (and keep their exit codes)."""
        return {service.process.pid for service in self.services if service.process.pid}

    def _on_signal(self, signum: int, _frame: object) -> None:
        self.received.append(signum)
        self.stop.set()

    def run(self, on_ready) -> int:
        """Start, call ``on_ready`` once all are ready, watch; the exit code."""
        previous = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        become_subreaper()
        self.reaper.start()
        code = 0
        try:
            self.start_all()
            if not self.stop.is_set():
                on_ready()
            code = self.watch()
        except StartupError as exc:
            print(f"parhelion up: {exc}", file=sys.stderr)
            code = 1
        finally:
            # A second Ctrl-C during shutdown must not interrupt the orderly stop.
            for sig in previous:
                signal.signal(sig, signal.SIG_IGN)
            self.stop_all()
            self.reaper.close()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        if self.received and code == 0:
            print("parhelion up: stopped.", file=sys.stderr)
        return code

    def start_all(self) -> None:
        for service in self.services:
            if self.stop.is_set():
                return
            self.started.append(service)
            self.start(service)

    def start(self, service: Service) -> None:
        """Start one service (its pid in runtime.json) and wait until it is ready."""
        started_at = time.monotonic()
        service.process.start()
        self.runtime.pids[service.process.name] = service.process.pid or 0
        self.runtime.save(self.state.runtime_file)
        if service.ready_url:
            service.process.wait_ready(
                service.ready_url, service.ready_timeout, ok_statuses=service.ok_statuses
            )
        else:
            service.process.wait_running(service.ready_timeout)
        log.info(
            "%s ready in %.1f s (pid %s)",
            service.process.name,
            time.monotonic() - started_at,
            service.process.pid,
        )

    def watch(self) -> int:
        """Until a signal (0), or until a service dies that may not be restarted (1, with the
        end of its log): one that is not restartable, or one that used up its restarts."""
        while not self.stop.wait(0.5):
            for service in self.started:
                if self.stop.is_set() or service.process.running():
                    continue
                process = service.process
                if not self.may_restart(service):
                    why = (
                        f"it was restarted {self.policy.max_restarts} times in "
                        f"{self.policy.window_seconds / 60:g} min"
                        if service.restartable
                        else "it is not restartable"
                    )
                    print(
                        f"parhelion up: {process.name} exited (code {process.exit_code()}); {why}; "
                        f"stopping the platform. End of {process.log_path}:\n{process.log_tail()}",
                        file=sys.stderr,
                    )
                    return 1
                self.restart(service)
        return 0

    def may_restart(self, service: Service) -> bool:
        """Whether ``service`` may start again now; the restart is counted when it may."""
        if not service.restartable:
            return False
        now = time.monotonic()
        times = self.restarts.setdefault(service.process.name, deque())
        while times and now - times[0] > self.policy.window_seconds:
            times.popleft()
        if len(times) >= self.policy.max_restarts:
            return False
        times.append(now)
        return True

    def restart(self, service: Service) -> None:
        """Start a dead restartable service again, once the zombies it left are reaped.

        A restart that fails (the process dies while starting, or is not ready in time, and
        is then stopped) is logged; the next pass of ``watch`` finds it dead and restarts it
        again, or gives up: a hung service never passes for a healthy one.
        """
        process = service.process
        print(
            f"parhelion up: {process.name} exited (code {process.exit_code()}); restarting it "
            f"(restart {len(self.restarts[process.name])} of at most {self.policy.max_restarts} "
            f"in {self.policy.window_seconds / 60:g} min)",
            file=sys.stderr,
            flush=True,
        )
        self.reaper.reap()
        try:
            self.start(service)
        except StartupError as exc:
            log.error("%s", exc)
            process.stop()  # running but not ready (hung): counted dead, so restarted or given up on

    def stop_all(self) -> None:
        """Services in reverse order, then any process left behind; runtime.json removed."""
        if self.received:
            print("parhelion up: stopping ...", file=sys.stderr, flush=True)
        for service in reversed(self.started):
            service.process.stop()
        leftovers = stop_descendants()
        if leftovers:
            log.warning("stopped %d leftover processes: %s", len(leftovers), "; ".join(leftovers))
        remove_platform_groups([group_base(self.state.root), dask_group_base(self.state.root)])
        self.state.runtime_file.unlink(missing_ok=True)


def find_proxy_command() -> str:
    """configurable-http-proxy from the repo's node_modules, else PATH; node must work."""
    node = shutil.which("node")
    if node is None:
        raise LaunchError(
            "node is not installed; the hub's proxy (configurable-http-proxy) needs Node.js >= 18. "
            "Install it (Debian: apt-get install nodejs npm), then run `make up`."
        )
    candidates = [REPO_ROOT / "node_modules" / ".bin" / "configurable-http-proxy"]
    on_path = shutil.which("configurable-http-proxy")
    if on_path:
        candidates.append(Path(on_path))
    for candidate in candidates:
        if candidate.exists():
            return str(candidate)
    npm_hint = "npm install" if shutil.which("npm") else "install npm (apt-get install npm), then npm install"
    raise LaunchError(
        f"configurable-http-proxy is not installed: run `make up` (it installs it), or `{npm_hint}` "
        f"in {REPO_ROOT}"
    )


def resolve_ports(platform: PlatformConfig, options: UpOptions) -> Ports:
    """Configured ports, checked free; the rest picked free now."""
    wanted = {} if options.free_ports else platform.local.ports.model_dump()
    if options.hub_port is not None:
        wanted["hub"] = options.hub_port
    names = [field.name for field in fields(Ports)]
    for name in names:
        port = wanted.get(name)
        if port is not None and not tcp_port_free(port):
            where = "--port" if name == "hub" and options.hub_port is not None else f"local.ports.{name}"
            raise LaunchError(
                f"port {port} on 127.0.0.1 is already in use ({where}); stop what holds it "
                f"or choose another port"
            )
    missing = [name for name in names if wanted.get(name) is None]
    taken = {port for port in wanted.values() if port is not None}
    free = iter(port for port in free_tcp_ports(len(missing) + len(taken)) if port not in taken)
    chosen = {name: wanted.get(name) or next(free) for name in names}
    return Ports(**chosen)


def check_prices(platform: PlatformConfig, state: StateDir) -> None:
    """The price catalog loads and prices the virtual node, or nothing starts."""
    if not platform.accounting.enabled:
        return
    try:
        configured_node(platform, state.root)
    except PriceError as exc:
        raise LaunchError(f"accounting.price_catalog / accounting.virtual_node: {exc}") from None


def install_config(source: Path, state: StateDir) -> Path | None:
    """The validated file becomes the live platform.yaml in the state directory.

    The live file may hold changes made while the platform ran (the Ansible quotas and roster
    plays write it) that are not in ``source``: nothing is lost, the replaced version is kept
    as platform.yaml.previous, and its path returned so that the launcher can say so.
    """
    if source.resolve() == state.platform_file.resolve():
        return None
    kept = None
    live = state.platform_file
    if live.exists() and live.read_bytes() != source.read_bytes():
        kept = live.with_name("platform.yaml.previous")
        shutil.copyfile(live, kept)
    tmp = live.with_suffix(".yaml.tmp")
    shutil.copyfile(source, tmp)
    tmp.replace(live)
    return kept


def run_down(state_dir: Path, timeout: float = 120.0) -> int:
    """Ask the running platform to stop, and wait until it has."""
    state = StateDir(state_dir)
    pid = state.lock_holder()
    if pid is None:
        print(f"parhelion down: nothing is running from {state.root}")
        return 0
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if state.lock_holder() is None:
            print("parhelion down: stopped.")
            return 0
        time.sleep(0.5)
    print(f"parhelion down: pid {pid} did not stop within {timeout:.0f} s", file=sys.stderr)
    return 1
