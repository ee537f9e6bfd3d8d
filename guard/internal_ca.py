"""guard's CA for download at ``http://guard.internal/ca.pem`` and a short page of
per-client instructions at ``http://guard.internal/``, as ``mitm.it`` serves mitmproxy's.

Plain ``http://`` through the proxy works before the client trusts anything, so this is
how a sandbox (or a person behind guard) gets the certificate to trust. Only the
certificate is served, never the key (which lives in another file of the confdir). The
page is static: nothing from the request is in it but the sandbox's name, escaped, and
its Content-Security-Policy allows no script at all.

>>> page = setup_page("agent-<7>")
>>> "agent-&lt;7&gt;" in page and "<script" not in page
True
"""

from __future__ import annotations

import base64
import html
from pathlib import Path

from guard.request import Response

PEM = "/ca.pem"
DER = "/ca.crt"
CSP = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"

_CLIENTS = (
    ("curl", "curl --cacert guard-ca.pem ...   (or export CURL_CA_BUNDLE=$PWD/guard-ca.pem)"),
    ("Python requests (and the SDKs on it: twilio, PyGithub)",
     "export REQUESTS_CA_BUNDLE=$PWD/guard-ca.pem"),
    ("Python httpx, urllib, aiohttp", "export SSL_CERT_FILE=$PWD/guard-ca.pem"),
    ("stripe (Python)", 'stripe.ca_bundle_path = "guard-ca.pem"   (it ships its own bundle)'),
    ("boto3", "export AWS_CA_BUNDLE=$PWD/guard-ca.pem"),
    ("Node.js", "export NODE_EXTRA_CA_CERTS=$PWD/guard-ca.pem   and, for fetch() to use the "
     "proxy at all, NODE_USE_ENV_PROXY=1 (Node 24+, 22.21+)"),
    ("git", "git config --global http.sslCAInfo $PWD/guard-ca.pem"),
    ("pip", "pip --cert guard-ca.pem ...   (or export PIP_CERT=$PWD/guard-ca.pem)"),
    ("Debian / Ubuntu system store",
     "sudo cp guard-ca.pem /usr/local/share/ca-certificates/guard.crt && "
     "sudo update-ca-certificates"),
    ("Java", "keytool -importcert -alias guard -file guard-ca.pem -cacerts"),
    ("Windows, Android, macOS", f"download {DER} (DER) and open it"),
)


def certificate(ca: Path | None, path: str) -> Response | None:
    """The CA certificate as PEM (:data:`PEM`) or DER (:data:`DER`); None for another
    path; a 404 when guard has no CA file (it is made when guard starts)."""
    if path not in (PEM, DER):
        return None
    try:
        pem = ca.read_text(encoding="ascii") if ca is not None else ""
    except OSError:
        pem = ""
    if "BEGIN CERTIFICATE" not in pem:
        return Response.json(404, {"error": {"type": "guard_internal",
                                             "message": "guard has no CA certificate here"}})
    if path == PEM:
        return Response(200, [("Content-Type", "application/x-pem-file"),
                              ("Content-Disposition", 'attachment; filename="guard-ca.pem"')],
                        pem.encode("ascii"))
    body = "".join(line for line in pem.splitlines() if line and "-----" not in line)
    return Response(200, [("Content-Type", "application/x-x509-ca-cert"),
                          ("Content-Disposition", 'attachment; filename="guard-ca.crt"')],
                    base64.b64decode(body))


def setup_page(sandbox: str) -> str:
    """The HTML page at ``http://guard.internal/``: where the CA is and how each client
    trusts it."""
    rows = "\n".join(f"<tr><th>{html.escape(name)}</th><td><code>{html.escape(how)}</code>"
                     f"</td></tr>" for name, how in _CLIENTS)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>guard</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{{font:15px/1.5 system-ui,sans-serif;max-width:60em;margin:2em auto;padding:0 1em}}
th{{text-align:left;vertical-align:top;padding:.3em 1em .3em 0;white-space:nowrap}}
td code{{word-break:break-all}} .dl a{{margin-right:1.5em}}</style></head>
<body><h1>guard</h1>
<p>This network's traffic goes through guard, an egress proxy: requests are simulated,
blocked or allowed by its rules, and every one is audited. You are sandbox
<b>{html.escape(sandbox) or "-"}</b>.</p>
<p>To use HTTPS through guard, trust its certificate authority:</p>
<p class="dl"><a href="{PEM}" download="guard-ca.pem">guard-ca.pem</a>
<a href="{DER}" download="guard-ca.crt">guard-ca.crt (DER)</a></p>
<pre>curl -o guard-ca.pem http://guard.internal{PEM}   # through the proxy, plain http</pre>
<table>{rows}</table>
<p>These variables replace a client's trust store: for hosts guard lets through, use a
bundle of the system's CAs and guard's (<code>guard ca bundle</code> on guard's host).
Proxy variables are a request to the code, not a wall: only a jail or a transparent
gateway makes sure nothing goes around guard.</p>
<p>Also here: <a href="/events">/events</a>, <a href="/outbox">/outbox</a>,
<a href="/world">/world</a> (this sandbox's own, as JSON).</p>
</body></html>
"""


def page_response(sandbox: str) -> Response:
    return Response(200, [("Content-Type", "text/html; charset=utf-8"),
                          ("Content-Security-Policy", CSP),
                          ("X-Content-Type-Options", "nosniff")],
                    setup_page(sandbox).encode("utf-8"))
