"""CA trust: the bundle, the environment lines, and installing guard's CA into the bundles
that certifi and the stripe SDK use, judged by the real clients through a real proxy."""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from guard import ca as trust
from guard.cli import main
from tests.conftest import ROOT


def test_ca_path_creates_the_ca_once_and_prints_where_it_is(tmp_path, capsys):
    assert main(["ca", "--confdir", str(tmp_path), "path"]) == 0
    path = Path(capsys.readouterr().out.strip())
    assert path == tmp_path / "mitmproxy-ca-cert.pem" and path.read_text().startswith("-----")
    first = path.read_text()
    main(["ca", "--confdir", str(tmp_path), "path"])
    assert path.read_text() == first


def test_the_bundle_holds_the_system_cas_and_guards_ca_exactly_once(tmp_path, capsys):
    out = tmp_path / "bundle.pem"
    for _ in range(2):
        assert main(["ca", "--confdir", str(tmp_path), "bundle", str(out)]) == 0
    guard_ca = trust.pem_blocks((tmp_path / "mitmproxy-ca-cert.pem").read_text())[0]
    system = trust.pem_blocks(trust.system_bundle().read_text())
    blocks = trust.pem_blocks(out.read_text())
    assert blocks.count(guard_ca) == 1
    assert set(system) <= set(blocks) and len(system) > 10


def test_ca_env_prints_export_lines_for_every_client(tmp_path, capsys):
    assert main(["ca", "--confdir", str(tmp_path), "env"]) == 0
    lines = capsys.readouterr().out.splitlines()
    exports = dict(line.removeprefix("export ").split("=", 1) for line in lines)
    bundle = str(tmp_path / "guard-ca-bundle.pem")
    for name in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "GIT_SSL_CAINFO",
                 "AWS_CA_BUNDLE", "PIP_CERT"):
        assert exports[name] == bundle
    assert exports["NODE_EXTRA_CA_CERTS"] == str(tmp_path / "mitmproxy-ca-cert.pem")
    assert Path(bundle).exists()


def python_env(tmp_path: Path) -> Path:
    """A Python environment with its own certifi and stripe bundles (the packages' code is
    linked, their CA files copied) and the rest of the test environment's packages."""
    env = tmp_path / "env"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env)], check=True)
    python = env / "bin" / "python"
    target = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig."
                                  "get_paths()['purelib'])"], capture_output=True, text=True,
                                 check=True).stdout.strip())
    ours = Path(site.getsitepackages()[0])
    for package, data in (("certifi", "cacert.pem"), ("stripe", "data")):
        (target / package).mkdir()
        for entry in (ours / package).iterdir():
            if entry.name == data:
                copy = shutil.copytree if entry.is_dir() else shutil.copyfile
                copy(entry, target / package / entry.name)
            elif entry.name != "__pycache__":
                (target / package / entry.name).symlink_to(entry)
    (target / "zz-test-env.pth").write_text(f"{ours}\n{ROOT}\n")
    return python


CLIENT = """
    import json, sys, requests, stripe
    proxy = sys.argv[1]
    out = {}
    try:
        stripe.api_key = "sk_test_ca"
        stripe.proxy = proxy
        out["stripe"] = stripe.Customer.create(email="ca@example.com").object
    except Exception as e:
        out["stripe"] = type(e).__name__
    try:
        r = requests.get("https://unknown.example.org/", proxies={"https": proxy})
        out["requests"] = r.status_code
    except Exception as e:
        out["requests"] = type(e).__name__
    print(json.dumps(out))
"""


def run_client(python: Path, proxy: str) -> dict[str, object]:
    import json

    env = {k: v for k, v in os.environ.items()
           if not k.lower().endswith("_proxy") and k not in trust.BUNDLE_VARS}
    done = subprocess.run([str(python), "-c", textwrap.dedent(CLIENT), proxy],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_installing_into_a_python_env_makes_stripe_and_requests_trust_guard(
        guard_proxy, tmp_path, capsys, confdir):
    python = python_env(tmp_path)
    g = guard_proxy()
    # before: both clients refuse guard's certificates
    assert run_client(python, g.url) == {"stripe": "APIConnectionError",
                                        "requests": "SSLError"}

    args = ["ca", "--confdir", str(confdir), "install", "--no-system", "--python", str(python)]
    assert main(args) == 0
    first = capsys.readouterr().out
    assert first.count("(added)") == 2 and "cacert.pem" in first
    assert "ca-certificates.crt" in first
    assert main(args) == 0
    assert capsys.readouterr().out.count("(already there)") == 2

    assert run_client(python, g.url) == {"stripe": "customer", "requests": 403}
    for bundle in trust.python_bundles(str(python)).values():
        guard_ca = trust.pem_blocks(Path(g.ca).read_text())[0]
        assert trust.pem_blocks(bundle.read_text()).count(guard_ca) == 1


def test_install_refuses_the_system_store_without_root(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert main(["ca", "--confdir", str(tmp_path), "install"]) == 2
    assert "needs root" in capsys.readouterr().err


@pytest.mark.netns
def test_install_adds_the_ca_to_the_system_store_once(tmp_path):
    """In a private mount namespace, over copies of the system's store, so the machine's
    own store is never touched."""
    from tests.net.lab import require_netns

    require_netns()
    if not all(shutil.which(t) for t in ("update-ca-certificates", "unshare", "openssl")):
        pytest.skip("needs update-ca-certificates, unshare and openssl")
    script = textwrap.dedent(f"""
        set -e
        mkdir -p {tmp_path}/local {tmp_path}/certs
        cp -a /etc/ssl/certs/. {tmp_path}/certs/
        mount --bind {tmp_path}/local /usr/local/share/ca-certificates
        mount --bind {tmp_path}/certs /etc/ssl/certs
        {sys.executable} -m guard ca --confdir {tmp_path}/conf install
        {sys.executable} -m guard ca --confdir {tmp_path}/conf install
        cp /etc/ssl/certs/ca-certificates.crt {tmp_path}/after.pem
        openssl verify -CAfile /etc/ssl/certs/ca-certificates.crt \\
            {tmp_path}/conf/mitmproxy-ca-cert.pem
    """)
    done = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                           script], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "system: /usr/local/share/ca-certificates/guard-ca.crt (added)" in lines[0]
    assert "(already there)" in lines[1]
    guard_ca = trust.pem_blocks((tmp_path / "conf" / "mitmproxy-ca-cert.pem").read_text())[0]
    assert trust.pem_blocks((tmp_path / "after.pem").read_text()).count(guard_ca) == 1
    assert lines[2].endswith(": OK")
    assert not Path("/usr/local/share/ca-certificates/guard-ca.crt").exists()
