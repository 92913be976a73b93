"""Run the real local platform in tests, and make sure nothing outlives it.

Every process `parhelion up` starts carries ``PARHELION_STATE_DIR`` in its environment;
after stopping the supervisor by pid, any process still carrying this test's state dir
is an orphan: it is killed, and the test fails.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import psutil

REPO_ROOT = Path(__file__).resolve().parents[1]
PARHELION = [sys.executable, "-m", "platform_tools.cli.main"]


def run_parhelion(*args: str, cwd: Path = REPO_ROOT, **kwargs) -> subprocess.CompletedProcess:
    """Run the `parhelion` command as a person does, capturing what it prints."""
    kwargs.setdefault("timeout", 120)
    return subprocess.run([*PARHELION, *args], cwd=cwd, capture_output=True, text=True, check=False, **kwargs)


@contextlib.contextmanager
def running_platform(root: Path, config_text: str, extra_args: list[str] | None = None):
    """A started LocalPlatform, stopped and checked for leftovers on the way out, even if
    it failed half-way through starting."""
    platform = LocalPlatform(root, config_text)
    try:
        platform.start(extra_args=extra_args)
        yield platform
    finally:
        platform.stop_and_check()


def platform_config_text(sample_files: int = 96, **replacements: str) -> str:
    """The example platform.yaml, made lighter for tests (fewer sample files)."""
    text = (REPO_ROOT / "hub_config" / "platform.local.yaml").read_text()
    text = text.replace("sample_files: 288", f"sample_files: {sample_files}")
    for old, new in replacements.items():
        assert old in text, old
        text = text.replace(old, new)
    return text


def processes_of(state_dir: Path) -> list[psutil.Process]:
    """Live processes of the platform at ``state_dir``.

    A process belongs to it if its environment carries ``PARHELION_STATE_DIR`` for it
    (`parhelion up` sets it on services, servers and Dask processes), or if it runs in,
    or names, a path inside it.
    """
    marker = f"PARHELION_STATE_DIR={state_dir}".encode()
    inside = str(state_dir) + os.sep
    found = []
    for proc in psutil.process_iter():
        if proc.pid == os.getpid():
            continue
        try:
            with open(f"/proc/{proc.pid}/environ", "rb") as handle:
                environ = handle.read().split(b"\0")
            if (
                marker in environ
                or (proc.cwd() + os.sep).startswith(inside)
                or any(inside in arg for arg in proc.cmdline())
            ):
                found.append(proc)
        except (OSError, psutil.Error):
            continue
    return found


class LocalPlatform:
    """One `parhelion up` under test."""

    def __init__(self, root: Path, config_text: str):
        self.root = root
        self.home = root / "home"
        self.state = root / "state"
        self.config = root / "platform.yaml"
        self.log = root / "up.log"
        self.home.mkdir(parents=True, exist_ok=True)
        self.config.write_text(config_text)
        self.process: subprocess.Popen | None = None

    @property
    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["HOME"] = str(self.home)
        env.pop("JUPYTERHUB_API_TOKEN", None)
        return env

    def start(self, timeout: float = 240.0, extra_args: list[str] | None = None) -> None:
        self.process = subprocess.Popen(
            [
                *PARHELION,
                "up",
                "--config",
                str(self.config),
                "--state-dir",
                str(self.state),
                "--free-ports",
                *(extra_args or []),
            ],
            cwd=REPO_ROOT,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=self.log.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"parhelion up exited {self.process.returncode}:\n{self.output}")
            if "is running" in self.output:
                return
            time.sleep(0.5)
        raise AssertionError(f"parhelion up not running after {timeout:.0f} s:\n{self.output}")

    @property
    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    @property
    def runtime(self) -> dict:
        return json.loads((self.state / "runtime.json").read_text())

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.runtime['ports']['hub']}"

    def password(self, kind: str = "user") -> str:
        return (self.state / "secrets" / f"{kind}-password").read_text().strip()

    def get(self, path: str) -> int:
        try:
            with urllib.request.urlopen(self.url + path, timeout=5) as answer:
                return answer.status
        except urllib.error.HTTPError as exc:
            return exc.code

    def stop(self, timeout: float = 120.0) -> int | None:
        """SIGTERM the supervisor by pid; SIGKILL its session if it hangs."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        return self.process.returncode

    def stop_and_check(self) -> None:
        """Stop, then fail if any process of this platform is still alive (killing it), or if the
        kernel socket directory of its run is left behind."""
        sockets = self.runtime.get("kernel_socket_dir") if (self.state / "runtime.json").exists() else None
        self.stop()
        deadline = time.monotonic() + 10
        leftovers = processes_of(self.state)
        while leftovers and time.monotonic() < deadline:
            time.sleep(0.5)
            leftovers = processes_of(self.state)
        described = []
        for proc in leftovers:
            try:
                described.append(f"{proc.pid} {' '.join(proc.cmdline())[:100]}")
                proc.kill()
            except psutil.Error:
                pass
        assert not described, "processes left behind:\n" + "\n".join(described)
        assert not (sockets and Path(sockets).exists()), f"{sockets} left behind"


def wait_for_http(url: str, process: subprocess.Popen, what: str, timeout: float) -> None:
    """Until ``url`` answers at all (any HTTP status); fails if the process exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"{what} exited with {process.returncode} before it answered")
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"{what} did not answer at {url} within {timeout:g} s")


def stop_process(process: subprocess.Popen | None) -> None:
    """SIGTERM, then SIGKILL after 10 s: a server a test started is gone when this returns."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


class RcloneS3:
    """A real S3-compatible server (rclone, from its PyPI wheel) over a temp folder.

    Buckets are top-level folders of ``root``: tests write files directly and read
    them back through S3.
    """

    ACCESS_KEY = "testaccesskey"
    SECRET_KEY = "testsecretkey123"

    def __init__(self, root: Path, keyed: bool = True, dir_cache_time: str = "1ms"):
        from platform_tools.services.processes import free_tcp_ports

        self.dir_cache_time = dir_cache_time  # longer only for a static archive (benchmarks)
        self.keyed = keyed  # without keys it serves anyone, like a public AWS Open Data bucket
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self.port = free_tcp_ports(1)[0]
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        env = dict(os.environ, RCLONE_CONFIG=os.devnull)
        if self.keyed:
            env["RCLONE_AUTH_KEY"] = f'"{self.ACCESS_KEY},{self.SECRET_KEY}"'
        self.process = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "rclone"),
                "serve",
                "s3",
                "--addr",
                f"127.0.0.1:{self.port}",
                "--dir-cache-time",
                self.dir_cache_time,  # not 0s: with 0s rclone spins a core once directories are cached
                str(self.root),
            ],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_http(self.url, self.process, "rclone serve s3", timeout=20)

    def stop(self) -> None:
        stop_process(self.process)

    @property
    def storage_options(self) -> dict:
        credentials = {"key": self.ACCESS_KEY, "secret": self.SECRET_KEY} if self.keyed else {"anon": True}
        return {
            "endpoint_url": self.url,
            **credentials,
            "client_kwargs": {"region_name": "us-east-1"},
            "config_kwargs": {
                "response_checksum_validation": "when_required",
                "request_checksum_calculation": "when_required",
            },
        }


class PostgresServer:
    """A real PostgreSQL server (binaries from the `pgserver` wheel) in a temp folder.

    PostgreSQL refuses to run as root, so as root it runs as ``nobody``. Listens on
    127.0.0.1 and a free port only; stopped by its pid (pg_ctl stop) at the end.
    """

    def __init__(self):
        import importlib.util

        from platform_tools.services.processes import free_tcp_ports

        self.root = Path(tempfile.mkdtemp(prefix="parhelion-pg-"))
        self.root.chmod(0o755)
        # The wheel's binaries (not its Python side, which needs nothing here), copied into
        # this world-readable root: as root, PostgreSQL runs as nobody, who may not be able
        # to reach a virtualenv inside a private (mode 700) checkout.
        # The binaries find their libraries through RPATH $ORIGIN/../../../pgserver.libs,
        # so the copy keeps the wheel's layout.
        package = Path(importlib.util.find_spec("pgserver").origin).parent
        site = self.root / "wheel"
        shutil.copytree(
            package / "pginstall",
            site / "pgserver" / "pginstall",
            symlinks=True,
            ignore=shutil.ignore_patterns("include"),
        )
        shutil.copytree(package.parent / "pgserver.libs", site / "pgserver.libs")
        self.bin = site / "pgserver" / "pginstall" / "bin"
        self.data = self.root / "data"
        self.port = free_tcp_ports(1)[0]
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _as_owner(self, argv: list[str]) -> list[str]:
        if os.geteuid() != 0:
            return argv
        return ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", *argv]

    def start(self) -> None:
        self.data.mkdir()
        if os.geteuid() == 0:
            import pwd

            account = pwd.getpwnam("nobody")
            os.chown(self.root, account.pw_uid, account.pw_gid)
            os.chown(self.data, account.pw_uid, account.pw_gid)
        env = dict(os.environ, HOME=str(self.root), LC_ALL="C")
        subprocess.run(
            self._as_owner(
                [
                    str(self.bin / "initdb"),
                    "-D",
                    str(self.data),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "-E",
                    "UTF8",
                ]
            ),
            check=True,
            capture_output=True,
            env=env,
            cwd=self.root,
        )
        subprocess.run(
            self._as_owner(
                [
                    str(self.bin / "pg_ctl"),
                    "-D",
                    str(self.data),
                    "-w",
                    "-t",
                    "60",
                    "-l",
                    str(self.root / "postgres.log"),
                    "start",
                    "-o",
                    f"-h 127.0.0.1 -p {self.port} -k {self.root}",
                ]
            ),
            check=True,
            capture_output=True,
            env=env,
            cwd=self.root,
        )

    @property
    def pid(self) -> int | None:
        try:
            return int((self.data / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def create_database(self, name: str) -> str:
        """A fresh database; its SQLAlchemy URL."""
        import psycopg

        with psycopg.connect(
            f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres", autocommit=True
        ) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        pid = self.pid
        if pid is not None:
            try:
                os.kill(pid, signal.SIGINT)  # PostgreSQL's "fast" shutdown
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline and psutil.pid_exists(pid):
                    time.sleep(0.1)
                if psutil.pid_exists(pid):
                    os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        shutil.rmtree(self.root, ignore_errors=True)


def headless_chromium(profile_dir: Path):
    """Debian's Chromium under chromedriver, headless, offline, with a fresh profile.

    Selenium is given chromedriver's path, so its driver manager never downloads one.
    """
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--window-size=1200,1400",
        f"--user-data-dir={profile_dir}",
    ):
        options.add_argument(flag)
    return webdriver.Chrome(options=options, service=Service("/usr/bin/chromedriver"))


def keep_screenshot(driver, name: str, fallback: Path) -> Path:
    """Save what the browser shows as ``name``.png among the run's artefacts.

    `make test` sets PARHELION_TEST_ARTIFACTS (test-artifacts/ in the tree: CI keeps it);
    a bare pytest run keeps them in ``fallback`` (the test's tmp_path).
    """
    folder = Path(os.environ.get("PARHELION_TEST_ARTIFACTS") or fallback)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    driver.save_screenshot(str(path))
    return path


START_CLUSTER = (
    "from dask_gateway import Gateway\n"
    "cluster = Gateway().new_cluster()\n"
    "cluster.scale({workers})\n"
    "cluster.get_client().wait_for_workers({workers}, timeout=120)\n"
)


async def server_with_cluster(user, workers: int = 1, profile: str | None = None):
    """Log in, start a server, open JupyterLab and start a Dask cluster from a kernel.

    Returns the kernel, whose ``cluster`` variable holds the running cluster.
    """
    await user.login()
    await user.start_server(profile=profile)
    await user.open_lab()
    kernel = await user.start_kernel()
    await kernel.execute(START_CLUSTER.format(workers=workers), timeout=180)
    return kernel


def run_in_a_users_kernel(
    platform: LocalPlatform,
    code: str,
    timeout: float,
    username: str = "demo",
    oauth_form: dict[str, str] | None = None,
) -> list:
    """Log in as a person (with the shared password, or at an identity provider's form), start a
    server and a kernel, run ``code``: the kernel's outputs.

    The kernel and the server are stopped afterwards, also when the code fails.
    """
    import asyncio

    from platform_tools.clients.hubclient import HubUser

    async def session() -> list:
        password = "" if oauth_form is not None else platform.password()
        async with HubUser(platform.url, username, password, oauth_form=oauth_form) as user:
            await user.login()
            await user.start_server()
            await user.open_lab()
            kernel = await user.start_kernel()
            try:
                return await kernel.execute(code, timeout=timeout)
            finally:
                await kernel.shutdown()
                await user.stop_server()

    return asyncio.run(session())


def outputs_text(cell) -> str:
    """The text a notebook cell showed: its streams and the plain form of its results."""
    parts = []
    for output in cell.outputs:
        if "text" in output:
            parts.append(output["text"])
        parts.append(output.get("data", {}).get("text/plain", ""))
    return "\n".join(parts)
