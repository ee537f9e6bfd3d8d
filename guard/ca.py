"""Make clients trust guard's CA: bundles, environment variables, installed trust stores.

Two facts shape this module. First, most variables that point a client at a CA
file *replace* its trust store, so hosts that guard lets through would fail: they
must point at a bundle of the system CAs plus guard's CA (:func:`write_bundle`).
Second, some clients ignore every variable: the ``stripe`` Python SDK verifies
against its own ``stripe/data/ca-certificates.crt`` and ``requests`` falls back
to certifi's ``cacert.pem``; :func:`install_python` appends guard's CA to those
files inside a given Python environment, once.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from guard.errors import NetError

# Variables whose file replaces the client's trust store: they get the combined bundle.
BUNDLE_VARS = (
    "SSL_CERT_FILE",          # OpenSSL default: Python ssl/urllib/httpx/aiohttp, Ruby, uv
    "REQUESTS_CA_BUNDLE",     # requests (and pip through it)
    "CURL_CA_BUNDLE",         # curl, pycurl
    "GIT_SSL_CAINFO",         # git over https
    "AWS_CA_BUNDLE",          # boto3 / botocore, aws cli
    "PIP_CERT",               # pip
    "HTTPLIB2_CA_CERTS",      # httplib2 (Google API clients)
    "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH",  # gRPC
    "CARGO_HTTP_CAINFO",      # cargo
    "NPM_CONFIG_CAFILE",      # npm
    "DENO_CERT",              # deno
    "NIX_SSL_CERT_FILE",      # nix
)
# Variables that add to the client's trust store: guard's CA alone is enough.
EXTRA_VARS = ("NODE_EXTRA_CA_CERTS",)

SYSTEM_BUNDLES = (
    "/etc/ssl/certs/ca-certificates.crt",   # Debian, Ubuntu, Alpine
    "/etc/pki/tls/certs/ca-bundle.crt",     # Fedora, RHEL
    "/etc/ssl/ca-bundle.pem",               # openSUSE
    "/etc/ssl/cert.pem",                    # macOS, BSD
)
SYSTEM_STORES = (  # (directory for an extra CA, file name, command that rebuilds the store)
    ("/usr/local/share/ca-certificates", "guard-ca.crt", ["update-ca-certificates"]),
    ("/etc/pki/ca-trust/source/anchors", "guard-ca.pem", ["update-ca-trust", "extract"]),
)
_BEGIN, _END = "-----BEGIN CERTIFICATE-----", "-----END CERTIFICATE-----"


def pem_blocks(text: str) -> list[str]:
    """The certificates in a PEM text, each normalised to its base64 body."""
    blocks = []
    for part in text.split(_BEGIN)[1:]:
        body, sep, _ = part.partition(_END)
        if sep:
            blocks.append("".join(body.split()))
    return blocks


def system_bundle() -> Path:
    """The system's CA bundle, or certifi's when the system has none."""
    for candidate in SYSTEM_BUNDLES:
        if Path(candidate).is_file():
            return Path(candidate)
    import certifi  # a dependency of mitmproxy

    return Path(certifi.where())


def append_once(bundle: Path, ca: Path) -> bool:
    """Append the CA to ``bundle`` unless it is already in it; True when it was appended."""
    ca_text = ca.read_text()
    existing = bundle.read_text() if bundle.exists() else ""
    if set(pem_blocks(ca_text)) <= set(pem_blocks(existing)):
        return False
    with bundle.open("a") as f:
        if existing and not existing.endswith("\n"):
            f.write("\n")
        f.write(f"# guard CA\n{ca_text.strip()}\n")
    return True


def write_bundle(out: Path, ca: Path, base: Path | None = None) -> Path:
    """``out`` = the system CAs (or ``base``) followed by guard's CA, written atomically."""
    source = base or system_bundle()
    tmp = out.with_name(out.name + ".tmp")
    tmp.parent.mkdir(parents=True, exist_ok=True)
    tmp.write_text(source.read_text())
    append_once(tmp, ca)
    tmp.chmod(0o644)
    tmp.replace(out)
    return out


def environment(ca: Path, bundle: Path) -> dict[str, str]:
    """The variables that make common clients trust guard (and still the public CAs)."""
    env = {name: str(bundle) for name in BUNDLE_VARS}
    env.update({name: str(ca) for name in EXTRA_VARS})
    return env


@dataclass(frozen=True)
class Installed:
    """One trust store touched by ``guard ca install``."""

    where: str
    path: str
    changed: bool


_FIND_BUNDLES = """
import json, os
found = {}
try:
    import certifi
    found["certifi"] = certifi.where()
except Exception:
    pass
try:
    import importlib.util
    spec = importlib.util.find_spec("stripe")
    if spec and spec.origin:
        found["stripe"] = os.path.join(os.path.dirname(spec.origin), "data",
                                       "ca-certificates.crt")
except Exception:
    pass
print(json.dumps(found))
"""


def python_bundles(python: str) -> dict[str, Path]:
    """The CA files that ``python``'s certifi and stripe packages verify against."""
    try:
        done = subprocess.run([python, "-c", _FIND_BUNDLES], capture_output=True, text=True,
                              timeout=120)
    except OSError as e:
        raise NetError(f"cannot run {python}: {e}") from e
    if done.returncode != 0:
        raise NetError(f"{python} failed: {done.stderr.strip()}")
    return {name: Path(path) for name, path in json.loads(done.stdout).items()
            if Path(path).is_file()}


def install_python(ca: Path, python: str) -> list[Installed]:
    """Append guard's CA (once) to the certifi and stripe bundles of ``python``'s env."""
    return [Installed(f"{name} ({python})", str(path), append_once(path, ca))
            for name, path in python_bundles(python).items()]


def install_system(ca: Path, root: Path = Path("/")) -> Installed:
    """Add guard's CA to the operating system's store and rebuild it."""
    for directory, name, command in SYSTEM_STORES:
        store = root / directory.lstrip("/")
        if store.is_dir() and shutil.which(command[0]):
            target = store / name
            changed = not target.exists() or target.read_text() != ca.read_text()
            if changed:
                shutil.copyfile(ca, target)
                target.chmod(0o644)
            done = subprocess.run(command, capture_output=True, text=True)
            if done.returncode != 0:
                raise NetError(f"`{' '.join(command)}` failed: {done.stderr.strip()}")
            return Installed("system", str(target), changed)
    raise NetError("no system CA store found (looked for update-ca-certificates and "
                   "update-ca-trust); use `guard ca bundle` and the variables of `guard ca env`")
