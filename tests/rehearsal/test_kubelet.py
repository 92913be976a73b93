"""The node stand-ins: the process kubelet, its sandboxes, the pod network and traefik's stand-in.

The pure parts (a pod spec read as a kubelet reads it, bwrap's argv, a TLS ClientHello's server
name) are checked alone; then one Deployment runs for real through the API and controller
stand-ins: its pod as the pod's user with its volumes and environment, reached through its
Service by name and ClusterIP, its ConfigMap followed, and nothing left once it is deleted.
"""

from __future__ import annotations

import base64
import json
import ssl
import subprocess
import urllib.request
from pathlib import Path

import pytest

from tests.rehearsal.cluster import NAMESPACE, RehearsalCluster
from tests.rehearsal.controllers import is_ready
from tests.rehearsal.pod_spec import PodSpecError, container_env, expand, field_value, resource_value
from tests.rehearsal.sandbox import EMPTY, TMPFS, PidsCgroup, Sandbox
from tests.rehearsal.traefik import _closing, server_name

POD = {
    "metadata": {"name": "web-0", "namespace": "parhelion", "uid": "u1", "labels": {"app": "web"}},
    "spec": {"nodeName": "node-a"},
    "status": {"podIP": "10.1.1.10"},
}


@pytest.mark.unit
def test_dollar_references_expand_as_kubernetes_expands_them():
    env = {"PORT": "8081", "HOST": "hub"}
    assert expand("http://$(HOST):$(PORT)/hub", env) == "http://hub:8081/hub"
    assert expand("$$(PORT) $(MISSING)", env) == "$(PORT) $(MISSING)"  # escaped, and unknown kept


@pytest.mark.unit
def test_field_and_resource_references():
    assert field_value(POD, "metadata.labels['app']") == "web"
    assert field_value(POD, "status.podIP") == "10.1.1.10"
    container = {"name": "c", "resources": {"limits": {"memory": "1Gi", "cpu": "500m"}}}
    assert resource_value(container, {"resource": "limits.memory"}) == str(2**30)
    assert resource_value(container, {"resource": "limits.cpu", "divisor": "1m"}) == "500"
    with pytest.raises(PodSpecError, match="fieldRef 'spec.hostname'"):
        field_value(POD, "spec.hostname")


@pytest.mark.unit
def test_a_missing_secret_key_stops_the_container_as_kubelet_does():
    secret = {"kind": "Secret", "data": {"token": base64.b64encode(b"s3cret").decode()}}
    container = {
        "name": "c",
        "env": [
            {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "s", "key": "token"}}},
            {"name": "URL", "value": "http://$(HUB_SERVICE_HOST)/$(TOKEN)"},
        ],
    }
    env = container_env(POD, container, lambda kind, name, ns: secret, {"HUB_SERVICE_HOST": "10.1.2.3"})
    assert env["TOKEN"] == "s3cret" and env["URL"] == "http://10.1.2.3/s3cret"
    container["env"][0]["valueFrom"]["secretKeyRef"]["key"] = "nope"
    with pytest.raises(PodSpecError, match="couldn't find key nope in Secret parhelion/s"):
        container_env(POD, container, lambda kind, name, ns: secret, {})


@pytest.mark.unit
def test_the_sandbox_never_writes_the_host(tmp_path):
    """Mount points that do not exist here are made inside tmpfs; /etc/hosts becomes a link."""
    sandbox = Sandbox(
        argv=["true"],
        env={},
        mounts={"/usr/local/etc/jupyterhub/x.py": tmp_path, "/root": EMPTY, "/home/jovyan": TMPFS},
        user=1000,
        group=1000,
        etc_links={"hosts": "/run/pod/hosts"},
    )
    argv = sandbox.command()
    laid = [argv[i + 1] for i, a in enumerate(argv) if a == "--tmpfs"]
    assert {"/etc", "/usr/local/etc", "/tmp", "/dev/shm", "/root", "/home/jovyan"} <= set(laid)
    assert argv[argv.index("/etc/hosts") - 2 : argv.index("/etc/hosts") + 1] == [
        "--symlink",
        "/run/pod/hosts",
        "/etc/hosts",
    ]
    assert argv[argv.index("/root") - 3 : argv.index("/root") + 1] == ["--perms", "0755", "--tmpfs", "/root"]
    assert argv[-4:] == ["--bounding-set=-all", "--", "true"][-3:] or "setpriv" in argv
    assert not Path("/usr/local/etc/jupyterhub").exists()


@pytest.mark.unit
def test_traefiks_stand_in_reads_the_server_name_of_a_real_client_hello():
    context = ssl.create_default_context()
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    client = context.wrap_bio(incoming, outgoing, server_hostname="daskgateway-parhelion.abc123")
    with pytest.raises(ssl.SSLWantReadError):
        client.do_handshake()
    assert server_name(outgoing.read()) == "daskgateway-parhelion.abc123"
    assert server_name(b"GET / HTTP/1.1\r\n") is None


@pytest.mark.unit
def test_each_routed_request_asks_for_its_own_connection_but_upgrades_keep_theirs():
    assert _closing(b"Host: x\r\nConnection: keep-alive\r\n\r\n").startswith(b"Connection: close\r\nHost: x")
    upgrade = b"Host: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
    assert _closing(upgrade) == upgrade


SERVE = """
import json, os, http.server, socketserver
facts = {"uid": os.getuid(), "groups": os.getgroups(), "token": os.environ["TOKEN"],
         "pod": os.environ["POD_NAME"], "hub": os.environ.get("HUB_SERVICE_HOST"),
         "hosts": open("/etc/hosts").read(), "config": open("/config/setting").read()}
print(json.dumps(facts), flush=True)
class Handler(http.server.SimpleHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({**facts, "config": open("/config/setting").read()}).encode()
        self.send_response(200); self.end_headers(); self.wfile.write(body)
socketserver.TCPServer(("0.0.0.0", 8080), Handler).serve_forever()
"""


def _deployment() -> list[dict]:
    labels = {"app": "probe"}
    template = {
        "metadata": {"labels": labels},
        "spec": {
            "nodeSelector": {"parhelion.dev/pool": "users"},
            "securityContext": {"runAsUser": 1000, "fsGroup": 100},
            "containers": [
                {
                    "name": "web",
                    "image": "ghcr.io/parhelion-platform/parhelion-hub:test",
                    "command": ["python", "-c", SERVE],
                    "env": [
                        {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "probe", "key": "token"}}},
                        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                    ],
                    "ports": [{"name": "http", "containerPort": 8080}],
                    "readinessProbe": {"httpGet": {"path": "/", "port": "http"}},
                    "volumeMounts": [{"name": "config", "mountPath": "/config"}],
                }
            ],
            "volumes": [{"name": "config", "configMap": {"name": "probe"}}],
        },
    }
    return [
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "probe"}, "stringData": {"token": "t0k"}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "probe"}, "data": {"setting": "one"}},
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "hub"},
            "spec": {"selector": {"app": "elsewhere"}, "ports": [{"port": 8081}]},
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "probe"},
            "spec": {"selector": labels, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]},
        },
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "probe"},
            "spec": {"replicas": 1, "selector": {"matchLabels": labels}, "template": template},
        },
    ]


@pytest.mark.rehearsal
def test_a_deployment_runs_as_its_pod_says_and_leaves_nothing_behind(tmp_path):
    cluster = RehearsalCluster(tmp_path)
    try:
        cluster.start()
        cluster.install(_deployment())

        def ready():
            pods = cluster.list("Pod", NAMESPACE, {"app": "probe"})
            return pods[0] if pods and is_ready(pods[0]) else None

        pod = cluster.wait_for("the probe pod ready", ready, timeout=120)
        assert pod["spec"]["nodeName"] == "ip-10-0-2-20.ec2.internal"  # its node selector's pool
        service = cluster.get("Service", "probe")
        with urllib.request.urlopen(f"http://{service['spec']['clusterIP']}/", timeout=10) as answer:
            facts = json.load(answer)
        assert facts["uid"] == 1000 and 100 in facts["groups"]  # runAsUser, fsGroup
        assert facts["token"] == "t0k" and facts["pod"] == pod["metadata"]["name"]
        assert facts["hub"] == cluster.get("Service", "hub")["spec"]["clusterIP"]  # Service variables
        assert f"{service['spec']['clusterIP']} probe probe.parhelion" in facts["hosts"]
        assert pod["status"]["podIP"] in facts["hosts"]
        # a changed ConfigMap reaches the running pod's volume, as the kubelet's sync brings it
        cluster.call(cluster.store.patch, "ConfigMap", "probe", NAMESPACE, {"data": {"setting": "two"}})
        url = f"http://{service['spec']['clusterIP']}/"
        cluster.wait_for(
            "the new setting", lambda: json.load(urllib.request.urlopen(url, timeout=10))["config"] == "two"
        )
        uid = pod["metadata"]["uid"]
        cgroup = PidsCgroup(f"{cluster.kubelet.cgroup_root}/{uid}")
        assert cgroup.pids()
        cluster.call(cluster.store.delete, "Deployment", "probe", NAMESPACE)
        cluster.wait_for(
            "the pod gone", lambda: not cluster.list("Pod", NAMESPACE, {"app": "probe"}), timeout=60
        )
        assert not cgroup.pids() and not cgroup.path.exists()
        namespaces = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        assert f"ph{cluster.network.tag}" not in namespaces
    finally:
        cluster.stop()
    assert not cluster.leftovers()
