"""Two students on one machine (``local.spawner: system-users``), each kept from the other and
from the platform: the real platform, real Unix accounts, logins through an OpenID Connect
provider (oidc-provider-mock, as tests/hub/test_oidc_login.py).

Both log in, start a server and a Dask cluster with a worker. Then student A's own kernel - a
process of A's account, where a student's code runs - tries what the issue lists: reading B's
home, the platform's secrets, ledger, logs, hub database, runtime.json and platform.yaml,
``/proc/<pid>/environ`` of B's server and worker, signalling B's processes and the accounting
service, connecting to B's kernel sockets, writing the archive on disk and through S3 with the
keys A's environment holds. Every one must be refused; what A may do (its own home, reading
the archive) must work, so a probe that cannot run at all does not pass for a refusal.

Needs root (accounts are made with useradd, and removed after: a per-run prefix ``pt<hex>-``),
and a Python other accounts can run (the students' servers run the test's interpreter).
"""

from __future__ import annotations

import asyncio
import json
import os
import pwd
import re
import stat
from pathlib import Path

import psutil
import pytest

from platform_tools.contract.accounts import account_name
from platform_tools.local.accounts import UID_MIN
from platform_tools.local.kernels import runtime_dir_name
from tests.hub.test_oidc_login import provider  # noqa: F401 (the module's OIDC provider fixture)
from tests.isolation import isolated_place, isolation_unavailable
from tests.platform import platform_config_text, processes_of, running_platform, server_with_cluster

pytestmark = [pytest.mark.integration, pytest.mark.adversarial]

STUDENTS = ("student-a", "student-b")
#: What runs a user's code: none of it as root.
USERS_PROGRAMS = ("singleuser", "ipykernel", "dask worker", "dask scheduler", " worker ", " scheduler ")


if isolation_unavailable():
    pytest.skip(isolation_unavailable(), allow_module_level=True)


@pytest.fixture(scope="module")
def place():
    """An account prefix of this run and a 0755 folder for the platform and the homes."""
    with isolated_place() as place:
        yield place


@pytest.fixture(scope="module")
def hub(place, provider):  # noqa: F811
    from platform_tools.services.processes import free_tcp_ports

    prefix, root = place
    hub_port = free_tcp_ports(1)[0]
    auth = (
        "  auth:\n    type: oidc\n    client_id: parhelion-test\n"
        f"    callback_url: http://127.0.0.1:{hub_port}/hub/oauth_callback\n"
        f"    authorize_url: {provider}/oauth2/authorize\n"
        f"    token_url: {provider}/oauth2/token\n"
        f"    userdata_url: {provider}/userinfo\n    username_claim: sub\n"
    )
    students = (
        "groups:\n  students:\n    members: [student-a, student-b]\n    profiles: [small]\n  researchers:"
    )
    text = platform_config_text(
        sample_files=4,
        **{
            "  spawner: simple\n  trusted: true\n": (
                f"  spawner: system-users\n  accounts: {{prefix: {prefix}, home_root: {root / 'home'}}}\n"
            ),
            "groups:\n  researchers:": students,
        },
    )
    text = re.sub(r"  auth:\n    type: shared-password[^\n]*\n", auth, text)
    (root / "platform").mkdir(mode=0o755)
    (root / "platform" / "state" / "secrets").mkdir(parents=True)
    secret = root / "platform" / "state" / "secrets" / "oauth-client-secret"
    secret.write_text("any-secret\n")
    secret.chmod(0o600)  # as the admin is told to
    with running_platform(root / "platform", text, ["--port", str(hub_port)]) as platform:
        yield platform


PROBES = r"""
import json, os, signal, socket
import boto3
from botocore.exceptions import ClientError

targets = json.loads({targets!r})
results = {{}}

def probe(name, action):
    try:
        action()
        results[name] = "allowed"
    except PermissionError:
        results[name] = "denied"
    except ClientError:  # rclone's read-only serving answers a write 500 or 403: the files decide
        results[name] = "denied"
    except Exception as exc:
        results[name] = f"{{type(exc).__name__}}: {{exc}}"

def read(path):
    with open(path, "rb") as handle:
        handle.read(1)

def write(path):
    with open(path, "wb") as handle:
        handle.write(b"mine now")

def connect(path):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.connect(path)

for name, path in targets["read"].items():
    probe("read " + name, lambda path=path: read(path))
for name, path in targets["list"].items():
    probe("list " + name, lambda path=path: os.listdir(path))
for name, pid in targets["signal"].items():
    # signal 0 is checked exactly as any signal is (kill(2)), without harming the target if allowed
    probe("signal " + name, lambda pid=pid: os.kill(pid, 0))
probe("connect B's kernel socket", lambda: connect(targets["socket"]))
probe("write the archive on disk", lambda: write(targets["archive_file"]))
s3 = boto3.client("s3")
probe("S3 PUT into the archive", lambda: s3.put_object(Bucket=targets["bucket"], Key="mine.fits", Body=b"x"))
probe("S3 DELETE from the archive", lambda: s3.delete_object(Bucket=targets["bucket"], Key=targets["key"]))
# what A may do, so a probe that cannot run at all is not taken for a refusal
probe("own: list my home", lambda: os.listdir(os.path.expanduser("~")))
probe("own: S3 GET", lambda: s3.get_object(Bucket=targets["bucket"], Key=targets["key"])["Body"].read())
probe("own: signal my server", lambda: os.kill(os.getppid(), 0))
me = {{"uid": os.getuid(), "user": os.environ.get("USER"), "home": os.path.expanduser("~")}}
print(json.dumps({{"results": results, **me}}))
"""


def accounts_processes(uid: int) -> list[psutil.Process]:
    return [
        p for p in psutil.process_iter(["uids", "cmdline"]) if p.info["uids"] and p.info["uids"].real == uid
    ]


def targets_for(hub, prefix: str) -> dict:
    """What A's kernel tries, found as root: B's processes and files, the platform's."""
    state = hub.state
    b_account = pwd.getpwnam(account_name(prefix, "student-b"))
    b_processes = accounts_processes(b_account.pw_uid)
    server = next(p for p in b_processes if any("jupyterhub-singleuser" in a for a in p.info["cmdline"]))
    worker = next(p for p in b_processes if "worker" in p.info["cmdline"][1:3])
    sockets = Path(hub.runtime["kernel_socket_dir"]) / runtime_dir_name(
        Path(hub.runtime["kernel_socket_dir"]), "student-b"
    )
    socket_file = next(path for path in sockets.iterdir() if "-ipc-" in path.name)
    bucket = state / "archive" / "helio-sample"
    key = next(path for path in bucket.rglob("*.fits")).relative_to(bucket)
    clusters = [
        path for path in (state / "gateway" / "clusters").iterdir() if path.stat().st_uid == b_account.pw_uid
    ]
    logs = sorted((state / "logs").iterdir())
    assert logs and clusters
    return {
        "read": {
            "B's notebook": str(next(Path(b_account.pw_dir).rglob("*.ipynb"))),
            "the secrets": str(state / "secrets" / "admin-api-token"),
            "the ledger": str(state / "accounting.sqlite"),
            "a log": str(logs[0]),
            "the hub database": str(state / "hub" / "jupyterhub.sqlite"),
            "runtime.json": str(state / "runtime.json"),
            "platform.yaml": str(state / "platform.yaml"),
            "B's server environ": f"/proc/{server.pid}/environ",
            "B's worker environ": f"/proc/{worker.pid}/environ",
            "the hub's environ": f"/proc/{hub.runtime['pids']['jupyterhub']}/environ",
        },
        "list": {
            "B's home": b_account.pw_dir,
            "the state dir": str(state),
            "the logs": str(state / "logs"),
            "B's kernel sockets": str(sockets),
            "B's Dask cluster": str(clusters[0]),
        },
        "signal": {
            "B's server": server.pid,
            "B's worker": worker.pid,
            "the accounting service": hub.runtime["pids"]["accounting"],
            "the hub": hub.runtime["pids"]["jupyterhub"],
        },
        "socket": str(socket_file),
        "archive_file": str(bucket / "mine.fits"),
        "bucket": "helio-sample",
        "key": str(key),
    }


@pytest.fixture(scope="module")
def seen(hub, place):
    """Both students with a server and a one-worker cluster; A's probes; who runs what."""
    from platform_tools.clients.hubclient import HubUser

    prefix, _ = place

    async def scenario() -> dict:
        users = [HubUser(hub.url, name, oauth_form={"sub": name}, timeout=300) for name in STUDENTS]
        for user in users:
            await user.__aenter__()
        try:
            kernels = await asyncio.gather(*(server_with_cluster(user) for user in users))
            processes = {
                name: [
                    (p.info["uids"].real, " ".join(p.info["cmdline"][:3]))
                    for p in accounts_processes(pwd.getpwnam(account_name(prefix, name)).pw_uid)
                ]
                for name in STUDENTS
            }
            root_owned = [  # of this platform: other platforms may run on the machine
                " ".join(p.cmdline()[:3])
                for p in processes_of(hub.state)
                if p.uids().real == 0 and any(word in " ".join(p.cmdline()) for word in USERS_PROGRAMS)
            ]
            targets = targets_for(hub, prefix)
            code = PROBES.format(targets=json.dumps(targets))
            (output,) = [o for o in await kernels[0].execute(code, timeout=120) if o.get("name") == "stdout"]
            for kernel in kernels:
                await kernel.execute("cluster.shutdown()", timeout=60)
                await kernel.shutdown()
            probes = json.loads(output["text"])
            return {"probes": probes, "processes": processes, "root_owned": root_owned, "targets": targets}
        finally:
            for user in users:
                await user.stop_server()
                await user.__aexit__(None, None, None)

    return asyncio.run(scenario())


def test_each_student_runs_as_their_own_account_never_root(seen, place):
    prefix, root = place
    for name in STUDENTS:
        account = pwd.getpwnam(account_name(prefix, name))
        assert account.pw_uid >= UID_MIN and account.pw_dir == str(root / "home" / account.pw_name)
        home = Path(account.pw_dir).stat()
        assert (home.st_uid, stat.S_IMODE(home.st_mode)) == (account.pw_uid, 0o700)
        commands = " | ".join(command for _, command in seen["processes"][name])
        assert "jupyterhub-singleuser" in commands and "worker" in commands, commands
        assert "scheduler" in commands, commands
    assert seen["probes"]["uid"] == pwd.getpwnam(account_name(prefix, "student-a")).pw_uid
    assert seen["probes"]["user"] == account_name(prefix, "student-a")
    assert seen["probes"]["home"] == str(root / "home" / account_name(prefix, "student-a"))
    assert seen["root_owned"] == []
    assert os.stat("/").st_uid == 0  # dask-gateway's working-directory code did not chown /


def test_student_a_is_refused_everything_of_student_b_and_of_the_platform(seen):
    results = seen["probes"]["results"]
    own = {probe: outcome for probe, outcome in results.items() if probe.startswith("own: ")}
    assert own and set(own.values()) == {"allowed"}, own
    refused = {probe: outcome for probe, outcome in results.items() if not probe.startswith("own: ")}
    assert len(refused) >= 20
    assert {probe: outcome for probe, outcome in refused.items() if outcome != "denied"} == {}
    archive = Path(seen["targets"]["archive_file"]).parent  # S3 refusals are errors; the files say
    assert not (archive / "mine.fits").exists() and (archive / seen["targets"]["key"]).is_file()


def test_the_platforms_files_stay_the_platforms(seen, hub):
    """After a day's work (logins, servers, clusters, meter samples): the state directory is
    passable only (0711), and nothing in it a student could read or write, archive included."""
    state = hub.state
    assert stat.S_IMODE(state.stat().st_mode) == 0o711
    exposed = []
    for folder, folders, files in os.walk(state):
        if Path(folder).parent == state / "gateway" / "clusters":
            folders.clear()  # a cluster's folder is its user's (asserted in the probes)
            continue
        for entry in [*folders, *files]:
            path = Path(folder) / entry
            info = path.lstat()
            if stat.S_ISLNK(info.st_mode) or info.st_uid != 0:
                exposed.append(f"{path} (owner {info.st_uid})")
            elif stat.S_IMODE(info.st_mode) & 0o066 and path not in (state / "gateway",):
                exposed.append(f"{path} ({oct(stat.S_IMODE(info.st_mode))})")
    assert exposed == []
