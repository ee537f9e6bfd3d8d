"""A real three-node Redis Cluster for the tests: three ``redis-server --cluster-enabled
yes`` on free loopback ports, joined by ``redis-cli --cluster create`` (both from Debian's
``redis-server`` and ``redis-tools``, which ``.ci/run`` installs). Each store a test makes
gets a key prefix with a hash tag of its own, so the stores of a session spread over the
three nodes."""

from __future__ import annotations

import random
import shutil
import socket
import subprocess
import time
import uuid
from pathlib import Path

from tests.redis_server import _free_port

NODES = 3


class RedisClusterServers:
    def __init__(self, dir: Path) -> None:
        self.dir = dir
        self.ports: list[int] = []
        self.procs: list[subprocess.Popen[bytes]] = []

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.ports[0]}/0?cluster=yes"

    def prefixed(self) -> str:
        """The cluster's URL with a prefix (and hash tag) no other store uses."""
        return f"{self.url}&prefix={{t{uuid.uuid4().hex[:12]}}}:"

    def start(self) -> RedisClusterServers:
        server, cli = shutil.which("redis-server"), shutil.which("redis-cli")
        if server is None or cli is None:
            raise RuntimeError("redis-server and redis-cli are not installed "
                               "(apt-get install redis-server redis-tools)")
        for i in range(NODES):
            node = self.dir / str(i)
            node.mkdir(parents=True, exist_ok=True)
            for _ in range(5):  # a free port may be taken before the node binds it
                port = _cluster_port()
                proc = subprocess.Popen(
                    [server, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(node),
                     "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                     "--save", "", "--appendonly", "no", "--daemonize", "no",
                     "--logfile", str(node / "redis.log")],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                if self._up(cli, port, proc):
                    break
                proc.kill()
                proc.wait()
            else:
                raise RuntimeError(f"redis cluster node {i} did not start: see {node}")
            self.ports.append(port)
            self.procs.append(proc)
        subprocess.run([cli, "--cluster", "create",
                        *(f"127.0.0.1:{p}" for p in self.ports),
                        "--cluster-replicas", "0", "--cluster-yes"],
                       check=True, capture_output=True, timeout=60)
        for port in self.ports:  # every node knows every slot's owner
            self._wait(cli, port, "CLUSTER INFO", "cluster_state:ok")
        return self

    def _up(self, cli: str, port: int, proc: subprocess.Popen[bytes]) -> bool:
        for _ in range(300):
            if proc.poll() is not None:
                return False
            out = subprocess.run([cli, "-h", "127.0.0.1", "-p", str(port), "PING"],
                                 capture_output=True, text=True, timeout=10)
            if "PONG" in out.stdout:
                return True
            time.sleep(0.1)
        return False

    def _wait(self, cli: str, port: int, command: str, want: str) -> None:
        out = None
        for _ in range(300):
            out = subprocess.run([cli, "-h", "127.0.0.1", "-p", str(port), *command.split()],
                                 capture_output=True, text=True, timeout=10)
            if want in out.stdout:
                return
            time.sleep(0.1)
        raise RuntimeError(f"redis cluster node {port} did not answer {command} ({out}): "
                           f"see {self.dir}")

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        self.procs = []


def _cluster_port() -> int:
    """A free port a cluster node can take: its bus port (10,000 higher) must exist too, so
    at most 55535. The kernel hands out free ports from a moving cursor, so when it is
    high every port it gives is: pick one at random below the limit instead."""
    for _ in range(200):
        port = random.randint(20000, 55535)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    return _free_port()
