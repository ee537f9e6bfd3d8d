"""``guard jail -- COMMAND``: the command's only way out is guard, its exit code passes
through, and nothing is left behind however it ends. (What a hostile command tries, and
that it fails, is in test_jail_boundary.py.)

Each test runs guard jail inside a namespace of its own ("jailhost"), so the jail's veth
and iptables rules never touch the machine's namespace.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.net.lab import (
    PYTHON_READABLE,
    ROOT,
    FakeInternet,
    Netns,
    clean_env,
    in_thread,
    inside,
    require_netns,
)

pytestmark = pytest.mark.netns


@pytest.fixture(scope="module")
def confdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("jailconf")


STARTED: list[subprocess.Popen[str]] = []


@pytest.fixture
def jailhost() -> Iterator[Netns]:
    require_netns()
    ns = Netns("jailhost")
    try:
        yield ns
    finally:
        for proc in STARTED:  # a failed test may leave a jail running or half removed
            if proc.poll() is None:
                proc.kill()
                proc.wait(30)
            jail_ns = Netns.existing(f"guardjail-{proc.pid}")
            if jail_ns is not None:
                jail_ns.delete()
        STARTED.clear()
        ns.delete()


def jail(host: Netns, confdir: Path, script: str, *options: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        ["ip", "netns", "exec", host.name, sys.executable, "-m", "guard", "jail",
         "--confdir", str(confdir), "-q", *PYTHON_READABLE, *options, "--",
         sys.executable, "-c", textwrap.dedent(script)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=clean_env(), cwd=ROOT)
    STARTED.append(proc)
    return proc


def leftovers(host: Netns, pid: int) -> list[str]:
    """What a jail of ``pid`` would leave: namespace, /etc/netns entry, veth, rules."""
    found = []
    if f"guardjail-{pid}" in host.run("ip", "netns", "list"):
        found.append("namespace")
    if Path(f"/etc/netns/guardjail-{pid}").exists():
        found.append("/etc/netns entry")
    if f"gj{pid}h" in host.run("ip", "-o", "link", "show"):
        found.append("veth")
    rules = host.run("iptables", "-w", "-S") + host.run("iptables", "-w", "-t", "nat", "-S")
    rules += host.run("ip6tables", "-w", "-S", check=False)
    if f"GJ-{pid}" in rules or f"gj{pid}h" in rules:
        found.append("iptables rules")
    return found


def test_a_jailed_script_is_simulated_and_blocked_and_its_exit_code_passes_through(
        jailhost, confdir):
    # listeners in the jail's host namespace, to prove the host-side firewall holds
    probes = FakeInternet(jailhost)
    probes.tcp("0.0.0.0", 2222)
    probes.udp("0.0.0.0", 5000)

    def control() -> None:
        with inside(jailhost):
            socket.create_connection(("127.0.0.1", 2222), timeout=5).close()

    in_thread(control)
    try:
        proc = jail(jailhost, confdir, """
            import json, os, socket, subprocess, requests, stripe
            out = {"uid": os.getuid(), "env": {k: os.environ.get(k) for k in (
                "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "GIT_SSL_CAINFO",
                "AWS_CA_BUNDLE", "PIP_CERT", "NODE_EXTRA_CA_CERTS", "HTTPS_PROXY")}}
            gateway = socket.gethostbyname("api.stripe.com")
            out["resolved"] = gateway
            stripe.api_key = "sk_test_jail"
            stripe.ca_bundle_path = os.environ["SSL_CERT_FILE"]
            c = stripe.Customer.create(email="jail@example.com")
            out["customer"] = [c.id, stripe.Customer.retrieve(c.id).email]
            r = requests.get("https://unknown.example.org/")
            out["unknown"] = [r.status_code, r.headers["X-Guard-Rule"]]
            try:
                socket.create_connection((gateway, 2222), timeout=5).close()
                out["tcp"] = "connected"
            except OSError as e:
                out["tcp"] = type(e).__name__
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                try:
                    u.sendto(b"probe", (gateway, 5000))
                    out["udp"] = "sent"
                except OSError as e:  # the jail-side rules refuse at once
                    out["udp"] = type(e).__name__
            print(json.dumps(out))
            raise SystemExit(3)
        """)
        stdout, stderr = proc.communicate(timeout=300)
    finally:
        probes.close()
    assert proc.returncode == 3, stderr
    out = json.loads(stdout.strip().splitlines()[-1])
    bundle = out["env"]["SSL_CERT_FILE"]
    assert bundle and all(out["env"][k] == bundle for k in (
        "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "GIT_SSL_CAINFO", "AWS_CA_BUNDLE", "PIP_CERT"))
    # guard's CA certificate, copied next to the bundle (its confdir is hidden in the jail)
    assert out["env"]["NODE_EXTRA_CA_CERTS"] == str(Path(bundle).parent / "guard-ca.pem")
    assert (Path(out["env"]["NODE_EXTRA_CA_CERTS"]).name, out["uid"]) == ("guard-ca.pem", 65534)
    assert out["env"]["HTTPS_PROXY"] is None
    assert out["resolved"].startswith("10.213.")  # every name resolves to guard's side
    assert out["customer"][0].startswith("cus_") and out["customer"][1] == "jail@example.com"
    assert out["unknown"] == [403, "guard.default-deny"]
    assert (out["tcp"], out["udp"]) == ("ConnectionRefusedError", "PermissionError")
    assert sum(probes.connections.values()) == 1  # the control connection only
    assert sum(probes.datagrams.values()) == 0
    assert leftovers(jailhost, proc.pid) == []


def test_a_command_killed_with_sigkill_leaves_nothing_behind(jailhost, confdir):
    proc = jail(jailhost, confdir, "import os, signal; os.kill(os.getpid(), signal.SIGKILL)")
    proc.communicate(timeout=300)
    assert proc.returncode == 128 + signal.SIGKILL
    assert leftovers(jailhost, proc.pid) == []


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_to_guard_jail_stops_the_command_and_cleans_up(jailhost, confdir, sig):
    proc = jail(jailhost, confdir, """
        import time
        print("ready", flush=True)
        time.sleep(600)
    """)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    assert leftovers(jailhost, proc.pid) != []  # the jail is up while the command runs
    proc.send_signal(sig)
    proc.communicate(timeout=120)
    assert proc.returncode == 128 + sig
    assert leftovers(jailhost, proc.pid) == []


def members(netns_inode: int) -> list[int]:
    """Pids (here) of the processes in the network namespace with that inode."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and os.stat(entry / "ns" / "net").st_ino == netns_inode:
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def test_a_jail_whose_guard_was_killed_is_removed_by_the_next_jail(jailhost, confdir):
    first = jail(jailhost, confdir, """
        import os, time
        print(os.stat("/proc/self/ns/net").st_ino, flush=True)
        time.sleep(600)
    """)
    assert first.stdout is not None
    command = members(int(first.stdout.readline()))  # bubblewrap, its init and the command
    assert len(command) >= 2
    first.kill()  # guard crashes: no chance to clean up
    first.wait(60)
    assert "namespace" in leftovers(jailhost, first.pid)

    second = jail(jailhost, confdir, "pass")
    second.communicate(timeout=300)
    assert second.returncode == 0
    assert leftovers(jailhost, first.pid) == []
    assert leftovers(jailhost, second.pid) == []
    for pid in command:  # the sandbox died with its guard (and the next jail would kill it)
        state = Path(f"/proc/{pid}/status")
        assert not state.exists() or "State:\tZ" in state.read_text()


def test_common_clients_trust_guard_through_the_jails_environment_alone(jailhost, confdir):
    proc = jail(jailhost, confdir, """
        import json, shutil, subprocess, urllib.error, urllib.request
        import boto3, botocore.exceptions, httpx, requests
        url = "https://unknown.example.org/repo"
        out = {}
        try:
            urllib.request.urlopen(url)
        except urllib.error.HTTPError as e:
            out["urllib"] = e.code
        out["httpx"] = httpx.get(url).status_code
        out["requests"] = requests.get(url).status_code
        try:
            boto3.client("s3", region_name="us-east-1", aws_access_key_id="AKIDEXAMPLE",
                         aws_secret_access_key="secret").list_buckets()
        except botocore.exceptions.ClientError as e:
            out["boto3"] = e.response["ResponseMetadata"]["HTTPStatusCode"]
        out["curl"] = int(subprocess.run(["curl", "-s", "-o", "/dev/null", "-w",
                                          "%{http_code}", url],
                                         capture_output=True, text=True).stdout or 0)
        if shutil.which("git"):
            git = subprocess.run(["git", "ls-remote", url], capture_output=True, text=True)
            out["git"] = 403 if "error: 403" in git.stderr else git.stderr
        if shutil.which("node"):
            node = subprocess.run(["node", "-e", f"fetch('{url}').then(r => "
                                   "console.log(r.status), e => console.log(e.cause.code))"],
                                  capture_output=True, text=True)
            out["node"] = int(node.stdout) if node.stdout.strip().isdigit() else node.stdout
        print(json.dumps(out))
    """)
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr
    out = json.loads(stdout.strip().splitlines()[-1])
    # 403 is guard's default-deny answer: each client completed a TLS handshake with guard
    assert out == {client: 403 for client in out}, out
    expected = {"urllib", "httpx", "requests", "boto3", "curl"}
    expected |= {tool for tool in ("git", "node") if shutil.which(tool)}
    assert set(out) == expected
    assert leftovers(jailhost, proc.pid) == []


def jail_sh(host: Netns, confdir: Path, script: str, *options: str
            ) -> subprocess.CompletedProcess[str]:
    proc = subprocess.Popen(
        ["ip", "netns", "exec", host.name, sys.executable, "-m", "guard", "jail",
         "--confdir", str(confdir), "-q", *options, "--", "sh", "-c", script],
        # "/" and not the checkout: a clone under /tmp would be behind the jail's private /tmp
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=clean_env(), cwd="/")
    STARTED.append(proc)
    stdout, stderr = proc.communicate(timeout=300)
    assert leftovers(host, proc.pid) == []
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


@pytest.mark.parametrize("user, uid", [("www-data", "33"), ("4242", "4242")])
def test_the_command_can_run_as_another_user(jailhost, confdir, user, uid):
    done = jail_sh(jailhost, confdir, "id -u; curl -s -o /dev/null -w '%{http_code}' "
                   "https://unknown.example.org/ || echo no-curl", "--user", user)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [uid, "403" if shutil.which("curl") else "no-curl"]


@pytest.mark.parametrize("user", ["root", "0"])
def test_root_in_the_jail_is_refused_without_the_loud_flag(jailhost, confdir, user):
    done = jail_sh(jailhost, confdir, "id -u", "--user", user)
    assert done.returncode == 2 and done.stdout == ""
    assert "--dangerously-run-as-root" in done.stderr and "root can leave the jail" in done.stderr


def test_the_loud_flag_runs_the_command_as_root_and_says_it_is_no_boundary(jailhost, confdir):
    done = jail_sh(jailhost, confdir, "id -u; grep CapEff /proc/self/status",
                   "--dangerously-run-as-root")
    assert done.returncode == 0, done.stderr
    uid, _, caps = done.stdout.split()
    assert uid == "0" and int(caps, 16) != 0
    assert "WARNING: --dangerously-run-as-root" in done.stderr and "not a" in done.stderr


def test_a_jail_with_an_smtp_sink_sends_mail_there_and_nowhere_else(jailhost, confdir,
                                                                     tmp_path):
    state = tmp_path / "state"
    proc = jail(jailhost, confdir, """
        import os, smtplib, ssl
        from email.message import EmailMessage
        msg = EmailMessage()
        msg["From"], msg["To"], msg["Subject"] = "app@example.com", "ceo@corp.test", "Hi"
        msg.set_content("from the jail")
        tls = ssl.create_default_context(cafile=os.environ["SSL_CERT_FILE"])
        with smtplib.SMTP("smtp.gmail.com", 587, timeout=20) as s:
            s.starttls(context=tls)
            s.login("agent", "pw")
            s.send_message(msg)
        with smtplib.SMTP("mx.corp.test", 25, timeout=20) as s:
            s.send_message(msg)
    """, "--smtp-port", "0", "--state", str(state))
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr
    out = subprocess.run([sys.executable, "-m", "guard", "outbox", "--state", str(state),
                          "--json"], capture_output=True, text=True, cwd=ROOT, check=True)
    records = [json.loads(line) for line in out.stdout.splitlines()]
    assert [(r["provider"], r["to"], r["subject"]) for r in records] == [
        ("smtp", ["ceo@corp.test"], "Hi"), ("smtp", ["ceo@corp.test"], "Hi")]
    assert leftovers(jailhost, proc.pid) == []


def test_a_jail_that_cannot_be_built_says_why_and_leaves_nothing(jailhost, confdir):
    done = jail_sh(jailhost, confdir, "true", "--readable", "/no/such/toolchain")
    assert done.returncode == 1 and "/no/such/toolchain does not exist" in done.stderr
