"""``guard jail`` is a boundary: a hostile command tries every way out and around guard,
each fails, and nothing reaches a listener on the host or the fake internet; a normal
command's traffic still works.

    inet (fake internet)  10.231.9.10, fd00:9::10  servers counting every connection
        │ wan
    host (runs guard jail; forwards packets like a careless router)  listeners of its own
        │ lan                                       ╲ veth (made by guard jail)
    plain 10.231.8.2 (a neighbour without a jail)    jail: the command, in bubblewrap

The neighbour proves, before each jail runs, that the paths are open: what the jail cannot
reach, it cannot reach because of the jail.
"""

from __future__ import annotations

import hashlib
import json
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.net.lab import (
    PYTHON_READABLE,
    ROOT,
    FakeInternet,
    LabCA,
    Netns,
    clean_env,
    link,
    require_netns,
)

pytestmark = pytest.mark.netns

INTERNET, INTERNET6 = "10.231.9.10", "fd00:9::10"
WAN = "10.231.9.1"  # the host's own address towards the internet
RULES = textwrap.dedent("""
    pack: lab
    rules:
      - id: lab.allowed
        hosts: [allowed.test]
        action: allow
        allow_private: true     # the fake internet lives in 10.231.0.0/16
""")


@dataclass
class Lab:
    host: Netns
    plain: Netns
    internet: FakeInternet  # servers in the fake internet
    local: FakeInternet  # servers of the host itself
    files: Path  # guard's files, in a directory every user may read (the jail must hide them)
    ca: LabCA

    def counts(self) -> tuple[int, int, int]:
        return self.internet.total(), self.local.total(), len(self.internet.requests)


def _neighbour_reaches_everything(lab: Lab) -> None:
    """The control: from the neighbour, TCP, UDP and IPv6 get to the internet and to the
    host's listeners (so a zero count for the jail is the jail's doing)."""
    before = lab.internet.total() + lab.local.total()
    probe = textwrap.dedent(f"""
        import socket
        for family, address, port in ((socket.AF_INET, "{INTERNET}", 5432),
                                      (socket.AF_INET6, "{INTERNET6}", 5432),
                                      (socket.AF_INET, "{WAN}", 2222)):
            with socket.socket(family) as s:
                s.settimeout(5)
                s.connect((address, port))
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            for port in (53, 443, 5000):
                u.sendto(b"probe", ("{INTERNET}", port))
    """)
    subprocess.run(["ip", "netns", "exec", lab.plain.name, sys.executable, "-c", probe],
                   check=True, timeout=60)
    deadline = time.time() + 10
    while lab.internet.total() + lab.local.total() < before + 6 and time.time() < deadline:
        time.sleep(0.05)
    assert lab.internet.total() + lab.local.total() == before + 6


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    require_netns()
    if shutil.which("bwrap") is None:
        pytest.fail("guard jail needs bubblewrap (apt-get install bubblewrap)")
    spaces: list[Netns] = []
    servers: list[FakeInternet] = []
    files = Path(tempfile.mkdtemp(prefix="guard-jail-test-", dir="/var/tmp"))
    try:
        host, plain, inet = (Netns(role) for role in ("jhost", "jplain", "jinet"))
        spaces += [host, plain, inet]
        link(host, "wan", f"{WAN}/24", inet, "eth0", f"{INTERNET}/24")
        link(host, "lan", "10.231.8.1/24", plain, "eth0", "10.231.8.2/24")
        for ns, iface, address in ((host, "wan", "fd00:9::1"), (inet, "eth0", INTERNET6),
                                   (host, "lan", "fd00:8::1"), (plain, "eth0", "fd00:8::2")):
            ns.run("ip", "-6", "addr", "add", f"{address}/64", "dev", iface, "nodad")
        for ns, gateway, gateway6 in ((inet, WAN, "fd00:9::1"),
                                      (plain, "10.231.8.1", "fd00:8::1")):
            ns.run("ip", "route", "add", "default", "via", gateway)
            ns.run("ip", "-6", "route", "add", "default", "via", gateway6)
        host.run("sh", "-c", "echo 1 > /proc/sys/net/ipv4/ip_forward; "
                 "echo 1 > /proc/sys/net/ipv6/conf/all/forwarding")
        host.hosts({"allowed.test": INTERNET})  # what guard resolves (the jail's names go
        # to guard's DNS stub)

        files.chmod(0o755)
        ca = LabCA(files)
        repo = _git_repo(files / "www")
        internet, local = FakeInternet(inet), FakeInternet(host)
        servers += [internet, local]
        internet.http(INTERNET, 443, ca.server_context(["allowed.test"]), files=repo)
        internet.http(INTERNET, 80)
        for port in (5432, 53):
            internet.tcp(INTERNET, port)
        internet.tcp(INTERNET6, 5432)
        for port in (53, 443, 5000):
            internet.udp(INTERNET, port)
        internet.udp(INTERNET6, 443)
        local.tcp("0.0.0.0", 2222)
        local.tcp("127.0.0.1", 2223)  # a loopback-only service of the host
        local.udp("0.0.0.0", 5000)
        local.unix(files / "host.sock")  # e.g. a docker or database socket anyone may use
        yield Lab(host, plain, internet, local, files, ca)
    finally:
        for server in servers:
            server.close()
        for ns in spaces:
            ns.delete()
        shutil.rmtree(files, ignore_errors=True)


def _git_repo(www: Path) -> Path:
    """A bare repository served over git's "dumb" HTTP protocol (static files)."""
    work, bare = www / "work", www / "repo.git"
    git = ["git", "-c", "user.name=lab", "-c", "user.email=lab@example.com",
           "-c", "init.defaultBranch=main"]
    subprocess.run([*git, "init", "-q", str(work)], check=True)
    (work / "README").write_text("cloned through guard\n")
    subprocess.run([*git, "-C", str(work), "add", "README"], check=True)
    subprocess.run([*git, "-C", str(work), "commit", "-qm", "first"], check=True)
    subprocess.run([*git, "clone", "-q", "--bare", str(work), str(bare)], check=True)
    subprocess.run(["git", "-C", str(bare), "update-server-info"], check=True)
    return www


@dataclass
class Guarded:
    """guard's own files for one jail, made readable for everyone on purpose: only the
    jail may keep them from the command."""

    confdir: Path
    rules: Path
    workspace: Path
    audit: Path
    state: Path
    audit_key: Path

    @classmethod
    def make(cls, root: Path) -> Guarded:
        root.mkdir()
        g = cls(root / "conf", root / "rules", root / "ws", root / "ws" / "audit.jsonl",
                root / "state", root / "audit.key")
        g.rules.mkdir()
        (g.rules / "lab.yaml").write_text(RULES)
        g.workspace.mkdir()
        g.workspace.chmod(0o777)  # the command may write here (--writable)
        g.state.mkdir()
        guard("ca", "--confdir", str(g.confdir), "path")
        guard("audit", "keygen", str(g.audit_key))
        return g

    def open_to_all(self) -> None:
        for path in [self.confdir, *self.confdir.iterdir(), self.rules, self.state,
                     *self.state.rglob("*"), self.audit_key, self.audit]:
            path.chmod(0o755 if path.is_dir() else 0o644)

    def options(self, ca: LabCA) -> list[str]:
        return ["--confdir", str(self.confdir), "--rules", str(self.rules), "--audit",
                str(self.audit), "--state", str(self.state), "--audit-key", str(self.audit_key),
                "--upstream-ca", str(ca.path), "--writable", str(self.workspace)]

    def fingerprint(self) -> dict[str, str]:
        found = {}
        for path in sorted([*self.confdir.iterdir(), *self.rules.iterdir(), self.audit_key]):
            found[path.name] = hashlib.sha256(path.read_bytes()).hexdigest()
        return found


def guard(*args: str) -> str:
    return subprocess.run([sys.executable, "-m", "guard", *args], capture_output=True,
                          text=True, check=True, cwd=ROOT, env=clean_env()).stdout


def start_jail(lab: Lab, g: Guarded, script: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        ["ip", "netns", "exec", lab.host.name, sys.executable, "-m", "guard", "jail", "-q",
         *g.options(lab.ca), *PYTHON_READABLE, "--",
         sys.executable, "-c", textwrap.dedent(script), *args],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=clean_env(), cwd=ROOT)


def guard_port(lab: Lab, pid: int) -> int:
    """The port of guard's transparent listener (guard jail of ``pid``)."""
    listening = lab.host.run("ss", "-Hltnp")
    ports = {int(m.group(1)) for line in listening.splitlines() if f"pid={pid}," in line
             for m in [re.search(r"10\.213\.\d+\.\d+:(\d+)", line)] if m}
    assert len(ports) == 1, listening
    return ports.pop()


def outcome(proc: subprocess.Popen[str], timeout: float = 300) -> tuple[dict[str, Any], str]:
    stdout, stderr = proc.communicate(timeout=timeout)
    lines = [line for line in stdout.splitlines() if line.startswith("{")]
    assert lines, f"no result (exit {proc.returncode}): {stderr}"
    return json.loads(lines[-1]), stderr


HOSTILE = r"""
import ctypes, errno, json, os, platform, signal, socket, subprocess, sys
cfg = json.loads(sys.argv[1])
libc = ctypes.CDLL(None, use_errno=True)
out = {}

def name(e):
    if isinstance(e, OSError) and e.errno:
        return errno.errorcode.get(e.errno, str(e.errno))
    return type(e).__name__

def attempt(what, fn):
    try:
        result = fn()
        out[what] = "done" if result is None else result
    except Exception as e:
        out[what] = name(e)

def run(what, *cmd):
    try:
        code = subprocess.run(cmd, capture_output=True).returncode
    except FileNotFoundError:
        code = "not installed"
    out[what] = "exit 0" if code == 0 else "failed"

def c_call(what, fn, *args):
    ctypes.set_errno(0)
    out[what] = "done" if fn(*args) >= 0 else errno.errorcode.get(ctypes.get_errno(), "?")

def tcp(address, port, family=socket.AF_INET):
    with socket.socket(family) as s:
        s.settimeout(5)
        s.connect((address, port))

def udp(address, port, family=socket.AF_INET):
    with socket.socket(family, socket.SOCK_DGRAM) as u:
        u.sendto(b"exfil", (address, port))

print("ready", flush=True)
guard_port = int(sys.stdin.readline())
gateway = socket.gethostbyname("anything.example.com")  # guard's DNS stub: guard's side

# the firewall and the network configuration, first: whatever survives below held
run("iptables -F", "iptables", "-w", "-F")
run("iptables -t nat -F", "iptables", "-w", "-t", "nat", "-F")
run("ip6tables -F", "ip6tables", "-w", "-F")
run("nft flush ruleset", "nft", "flush", "ruleset")
run("ip link set lo down", "ip", "link", "set", "lo", "down")
run("ip route del default", "ip", "route", "del", "default")
run("ip addr add", "ip", "addr", "add", "10.99.0.1/32", "dev", "lo")
run("ip link add", "ip", "link", "add", "gjx0", "type", "dummy")
attempt("enable IPv6", lambda: open("/proc/sys/net/ipv6/conf/all/disable_ipv6", "w").write("0"))
attempt("enable forwarding", lambda: open("/proc/sys/net/ipv4/ip_forward", "w").write("1"))

# namespaces: back into the host's network, or a new user namespace with capabilities
attempt("setns host net", lambda: os.setns(os.open(cfg["hostnet"], os.O_RDONLY),
                                           os.CLONE_NEWNET))
attempt("unshare user", lambda: os.unshare(os.CLONE_NEWUSER))
attempt("unshare net", lambda: os.unshare(os.CLONE_NEWNET))
c_call("mount tmpfs", libc.mount, b"none", b"/tmp", b"tmpfs", 0, None)
attempt("netns handles", lambda: os.listdir("/run/netns"))

# guard's files
attempt("append rules", lambda: open(cfg["rules_file"], "a").write("# owned\n") and None)
attempt("new rule file", lambda: open(os.path.join(cfg["rules"], "evil.yaml"), "w").close())
attempt("read rules", lambda: len(open(cfg["rules_file"]).read()))
attempt("append audit", lambda: open(cfg["audit"], "a").write("{}\n") and None)
attempt("read audit", lambda: len(open(cfg["audit"]).read()))
attempt("remove audit", lambda: os.unlink(cfg["audit"]))
attempt("rename audit", lambda: os.rename(cfg["audit"], cfg["audit"] + ".old"))
attempt("read CA key", lambda: len(open(os.path.join(cfg["confdir"], "mitmproxy-ca.pem")).read()))
attempt("list confdir", lambda: os.listdir(cfg["confdir"]))
attempt("list state", lambda: os.listdir(cfg["state"]))
attempt("read audit key", lambda: len(open(cfg["audit_key"]).read()))
attempt("write outside the workspace", lambda: open(os.path.join(cfg["files"], "x"), "w").close())
attempt("write the workspace", lambda: open(os.path.join(cfg["workspace"], "note"), "w").close())
attempt("read the CA certificate",
        lambda: "BEGIN CERTIFICATE" in open(os.environ["SSL_CERT_FILE"]).read())

# guard's process
guard = int(os.environ["GUARD_JAIL"].rsplit("-", 1)[1])
pids = [int(p) for p in os.listdir("/proc") if p.isdigit()]
out["guard visible in /proc"] = guard in pids
attempt("signal guard", lambda: os.kill(guard, signal.SIGKILL))
c_call("ptrace guard", libc.ptrace, 16, guard, None, None)  # PTRACE_ATTACH

# sockets that are not TCP or UDP over IPv4
attempt("raw socket", lambda: socket.socket(socket.AF_INET, socket.SOCK_RAW, 1).close())
attempt("packet socket", lambda: socket.socket(17, socket.SOCK_RAW, 0x0300).close())
attempt("ping socket", lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM, 1).close())
attempt("vsock", lambda: socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM).close())
attempt("host unix socket", lambda: socket.socket(socket.AF_UNIX).connect(cfg["unix"]))
attempt("socketpair", lambda: [s.close() for s in socket.socketpair()] and None)
numbers = {"x86_64": (250, 425), "aarch64": (219, 425)}.get(platform.machine())
if numbers:
    c_call("keyctl", libc.syscall, numbers[0], 1, None)  # KEYCTL_JOIN_SESSION_KEYRING
    c_call("io_uring_setup", libc.syscall, numbers[1], 8, ctypes.create_string_buffer(120))

# TCP anywhere but 80/443 (which guard answers), and guard's own port directly
for label, address, port in (("internet 5432", cfg["internet"], 5432),
                             ("internet dns over tcp", cfg["internet"], 53),
                             ("host 2222", gateway, 2222), ("host wan 2222", cfg["wan"], 2222),
                             ("host loopback service", "127.0.0.1", 2223),
                             ("guard port directly", gateway, guard_port),
                             ("guard port on the wan address", cfg["wan"], guard_port)):
    attempt(f"tcp {label}", lambda: tcp(address, port))
attempt("tcp ipv6 internet", lambda: tcp(cfg["internet6"], 5432, socket.AF_INET6))
attempt("tcp ipv6 loopback", lambda: tcp("::1", 2223, socket.AF_INET6))

# UDP: DNS to an outside resolver, QUIC, anything
for label, address, port in (("internet dns", cfg["internet"], 53),
                             ("internet quic", cfg["internet"], 443),
                             ("internet 5000", cfg["internet"], 5000),
                             ("host 5000", gateway, 5000), ("host wan 5000", cfg["wan"], 5000)):
    attempt(f"udp {label}", lambda: udp(address, port))
attempt("udp ipv6 quic", lambda: udp(cfg["internet6"], 443, socket.AF_INET6))

# HTTP to the internet's address itself: guard answers (the name is an address: denied)
import requests
attempt("http to an address", lambda: requests.get(f"http://{cfg['internet']}/", timeout=20
                                                   ).headers.get("X-Guard-Rule"))
print(json.dumps(out), flush=True)

# last: kill every process this user may signal (guard must not be one of them)
if os.fork() == 0:
    os.kill(-1, signal.SIGKILL)
    os._exit(0)
os.wait()
"""


def test_a_hostile_command_fails_at_everything_and_reaches_nothing(lab):
    _neighbour_reaches_everything(lab)
    g = Guarded.make(lab.files / "hostile")
    hostnet = lab.files / "hostnet"  # a handle on the host's network namespace, in sight
    hostnet.touch()
    subprocess.run(["mount", "--bind", f"/run/netns/{lab.host.name}", str(hostnet)], check=True)
    before = lab.counts()
    cfg = {"hostnet": str(hostnet), "rules": str(g.rules), "rules_file": str(g.rules / "lab.yaml"),
           "audit": str(g.audit), "confdir": str(g.confdir), "state": str(g.state),
           "audit_key": str(g.audit_key), "workspace": str(g.workspace), "files": str(lab.files),
           "unix": str(lab.files / "host.sock"), "internet": INTERNET, "internet6": INTERNET6,
           "wan": WAN}
    try:
        # a first, harmless jail creates the audit log and the state (then everything is
        # opened to every user: the second jail alone must keep them from the command)
        first = start_jail(lab, g, "import requests; requests.get('https://allowed.test/x')")
        first.communicate(timeout=300)
        assert first.returncode == 0
        g.open_to_all()
        fingerprint = g.fingerprint()
        proc = start_jail(lab, g, HOSTILE, json.dumps(cfg))
        assert proc.stdout is not None and proc.stdin is not None
        assert proc.stdout.readline().strip() == "ready"
        port = guard_port(lab, proc.pid)
        lab.local.tcp(WAN, port)  # a service on the host's other address, at guard's port
        proc.stdin.write(f"{port}\n")
        proc.stdin.flush()
        out, stderr = outcome(proc)
    finally:
        subprocess.run(["umount", str(hostnet)], check=False)
    assert proc.returncode == 128 + 9, stderr  # the command killed itself, not guard
    refused = "ECONNREFUSED"
    assert out == {
        "iptables -F": "failed", "iptables -t nat -F": "failed", "ip6tables -F": "failed",
        "nft flush ruleset": "failed", "ip link set lo down": "failed",
        "ip route del default": "failed", "ip addr add": "failed", "ip link add": "failed",
        "enable IPv6": "EACCES", "enable forwarding": "EACCES",
        "setns host net": "EPERM", "unshare user": "EPERM", "unshare net": "EPERM",
        "mount tmpfs": "EPERM", "netns handles": "ENOENT",
        "append rules": "EACCES", "new rule file": "EACCES", "read rules": "EACCES",
        "append audit": "EACCES", "read audit": "EACCES", "remove audit": "EBUSY",
        "rename audit": "EBUSY", "read CA key": "EACCES", "list confdir": "EACCES",
        "list state": "EACCES", "read audit key": "EACCES",
        "write outside the workspace": "EROFS", "write the workspace": "done",
        "read the CA certificate": True,
        "guard visible in /proc": False, "signal guard": "ESRCH", "ptrace guard": "ESRCH",
        "raw socket": "EPERM", "packet socket": "EAFNOSUPPORT", "ping socket": "EACCES",
        "vsock": "EAFNOSUPPORT", "host unix socket": "EPERM", "socketpair": "done",
        **({"keyctl": "EPERM", "io_uring_setup": "EPERM"}
           if platform.machine() in ("x86_64", "aarch64") else {}),
        "tcp internet 5432": refused, "tcp internet dns over tcp": refused,
        "tcp host 2222": refused, "tcp host wan 2222": refused,
        "tcp host loopback service": refused, "tcp guard port directly": refused,
        "tcp guard port on the wan address": refused,
        "tcp ipv6 internet": "EADDRNOTAVAIL", "tcp ipv6 loopback": "EADDRNOTAVAIL",
        "udp internet dns": "EPERM", "udp internet quic": "EPERM", "udp internet 5000": "EPERM",
        "udp host 5000": "EPERM", "udp host wan 5000": "EPERM", "udp ipv6 quic": "EADDRNOTAVAIL",
        "http to an address": "guard.default-deny",
    }, out
    time.sleep(1)  # (a datagram in flight would have arrived by now)
    assert lab.counts() == (before[0] + 1, before[1], before[2] + 1)  # the first jail's GET
    assert g.fingerprint() == fingerprint  # CA, key, rules: untouched; no new rule file
    assert (g.workspace / "note").exists()
    verify = subprocess.run([sys.executable, "-m", "guard", "audit", "verify", str(g.audit),
                             "--key", str(g.audit_key)], capture_output=True, text=True,
                            cwd=ROOT, env=clean_env())
    assert verify.returncode == 0, verify.stdout + verify.stderr


NORMAL = r"""
import json, os, subprocess, sys, requests, stripe
out = {}
r = requests.get("https://allowed.test/hello?via=requests", timeout=30)
out["requests"] = [r.status_code, r.json()["path"]]
curl = subprocess.run(["curl", "-sS", "https://allowed.test/hello?via=curl"],
                      capture_output=True, text=True)
out["curl"] = json.loads(curl.stdout)["path"] if curl.returncode == 0 else curl.stderr
clone = subprocess.run(["git", "clone", "-q", "https://allowed.test/repo.git", "/tmp/repo"],
                       capture_output=True, text=True)
out["git"] = (open("/tmp/repo/README").read() if clone.returncode == 0 else clone.stderr)
stripe.api_key = "sk_test_jail"
stripe.ca_bundle_path = os.environ["SSL_CERT_FILE"]
out["stripe"] = stripe.Customer.create(email="a@example.com").id[:4]
out["blocked"] = requests.get("https://unknown.example.org/").status_code
# a daemon that outlives the command (it must not outlive the jail)
subprocess.Popen(["sleep", "600"], start_new_session=True)
print(json.dumps(out), flush=True)
sys.exit(7)
"""


def test_a_normal_command_works_through_guard_and_only_allowed_requests_arrive(lab):
    g = Guarded.make(lab.files / "normal")
    before = len(lab.internet.requests)
    proc = start_jail(lab, g, NORMAL)
    out, stderr = outcome(proc)
    assert proc.returncode == 7, stderr
    assert out == {"requests": [200, "/hello?via=requests"], "curl": "/hello?via=curl",
                   "git": "cloned through guard\n", "stripe": "cus_", "blocked": 403}, stderr
    arrived = lab.internet.requests[before:]
    assert {host for _, host, _ in arrived} == {"allowed.test"}
    assert ("/hello?via=requests" in {p for _, _, p in arrived}
            and any(p.startswith("/repo.git/") for _, _, p in arrived))
    assert not any(f"pid={proc.pid}," in line for line in lab.host.run("ss", "-Hap").splitlines())
    assert "sleep 600" not in subprocess.run(["ps", "-eo", "args"], capture_output=True,
                                             text=True).stdout  # the daemon died with the jail
    events = [json.loads(line) for line in g.audit.read_text().splitlines()]
    actions = {(e.get("host"), e.get("action")) for e in events}
    assert {("allowed.test", "allow"), ("api.stripe.com", "simulate"),
            ("unknown.example.org", "block")} <= actions
