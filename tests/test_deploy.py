"""The deployment files (examples/docker-compose.yml, deploy/kubernetes/): they cannot run
here, so this checks what can be checked: they parse, every guard command they give is one
guard's own parser accepts, the files and images they name exist, and the NetworkPolicy
leaves sandbox pods no way out but guard. (The readiness command itself runs against a
real guard in tests/test_ready.py.)"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from guard.cli import parser

ROOT = Path(__file__).resolve().parent.parent
K8S = ROOT / "deploy" / "kubernetes"


def _docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def _k8s() -> dict[tuple[str, str], dict[str, Any]]:
    out = {}
    for f in sorted(K8S.glob("*.yaml")):
        for d in _docs(f):
            assert {"apiVersion", "kind", "metadata"} <= set(d), f
            out[(d["kind"], d["metadata"]["name"])] = d
    return out


def _accepts(argv: list[str]) -> None:
    """guard's own parser takes the command (SystemExit on an unknown option or value)."""
    parser().parse_args([a.replace("$(POD_NAME)", "pod-0") for a in argv])


def test_every_manifest_parses_and_names_a_kind() -> None:
    kinds = {k for k, _ in _k8s()}
    assert {"Deployment", "Service", "StatefulSet", "NetworkPolicy", "Namespace"} <= kinds


def test_the_guard_deployment_runs_commands_guard_accepts() -> None:
    dep = _k8s()[("Deployment", "guard")]
    assert dep["spec"]["replicas"] >= 2
    pod = dep["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    _accepts(container["args"])
    assert "--store" in container["args"] and "--workers" in container["args"]
    for probe in ("readinessProbe", "livenessProbe"):
        command = container[probe]["exec"]["command"]
        assert command[0] == "guard"
        _accepts(command[1:])
    assert "--store" in container["readinessProbe"]["exec"]["command"]
    secret = next(v for v in pod["volumes"] if v["name"] == "ca-secret")
    assert secret["secret"]["secretName"] == "guard-ca"
    assert "guard-ca" in (K8S / "README.md").read_text()
    port = container["ports"][0]["containerPort"]
    service = _k8s()[("Service", "guard")]
    assert service["spec"]["ports"][0]["port"] == port == 8080


def test_the_redis_the_deployment_names_exists_and_persists() -> None:
    dep = _k8s()[("Deployment", "guard")]
    args = dep["spec"]["template"]["spec"]["containers"][0]["args"]
    host = args[args.index("--store") + 1].split("//")[1].split(":")[0]
    assert ("Service", host) in _k8s()
    redis = _k8s()[("StatefulSet", host)]["spec"]["template"]["spec"]["containers"][0]
    assert "--appendonly" in redis["args"]


def test_sandbox_pods_may_reach_only_guard_and_dns() -> None:
    policy = _k8s()[("NetworkPolicy", "sandbox-egress-only-to-guard")]["spec"]
    assert policy["policyTypes"] == ["Egress"]
    rules = policy["egress"]
    to_guard, to_dns = rules
    assert to_guard["to"][0]["podSelector"]["matchLabels"] == {"app": "guard"}
    assert to_guard["ports"] == [{"protocol": "TCP", "port": 8080}]
    assert to_dns["to"][0]["podSelector"]["matchLabels"] == {"k8s-app": "kube-dns"}
    assert {p["port"] for p in to_dns["ports"]} == {53}
    assert not any("ipBlock" in t for r in rules for t in r["to"])
    guard = _k8s()[("NetworkPolicy", "guard")]["spec"]
    public = next(t["ipBlock"] for r in guard["egress"] for t in r["to"] if "ipBlock" in t)
    assert {"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16"} <= set(
        public["except"])  # allowed traffic never reaches the cluster or cloud metadata


def test_the_compose_replicas_share_redis_behind_one_port() -> None:
    compose = _docs(ROOT / "examples" / "docker-compose.yml")[0]
    services = compose["services"]
    replicas = [s for s in services if s.startswith("guard-") and s != "guard-ca"]
    assert len(replicas) == 2
    for name in replicas:
        command = services[name]["command"]
        _accepts(command)
        assert command[command.index("--store") + 1].startswith("redis://redis:")
        _accepts(services[name]["healthcheck"]["test"][2:])
    audits = {services[n]["command"][services[n]["command"].index("--audit") + 1]
              for n in replicas}
    assert len(audits) == 2  # one chain per replica
    _accepts(services["guard-ca"]["command"])
    assert "--appendonly" in services["redis"]["command"]
    cfg = (ROOT / "examples" / "haproxy.cfg").read_text()
    assert all(f"server {n} {n}:8080" in cfg for n in replicas)
    assert services["proxy"]["ports"] == ["8080:8080"]
    assert (ROOT / "Dockerfile").is_file()


@pytest.mark.parametrize("argv", [["run", "--workers", "0"], ["run", "--store"]])
def test_the_command_check_itself_refuses_a_bad_command(argv: list[str]) -> None:
    with pytest.raises(SystemExit):
        _accepts(argv)


def test_guard_jail_hides_a_redis_socket_the_store_names() -> None:
    from guard.cli.jail import private_paths
    from guard.options import Options

    paths = private_paths(Options(store="unix:///run/redis/redis.sock?prefix=t:"))
    assert Path("/run/redis/redis.sock") in paths
