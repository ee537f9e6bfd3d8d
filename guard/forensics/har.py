"""HAR 1.2 export (http://www.softwareishard.com/blog/har-12-spec/): the log as browser
dev tools, Charles or Fiddler read it.

Bodies are the logged (redacted, possibly truncated) ones. guard's own facts
ride along in custom fields, which HAR allows when they start with ``_``:
``_guard`` holds seq, sandbox, rule, action, reason, upstream and changes.
A flow that got no response has status 0, as HAR prescribes.
"""

from __future__ import annotations

from collections.abc import Iterable
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from guard import __version__

HAR_VERSION = "1.2"


def har(events: Iterable[dict[str, Any]]) -> dict[str, Any]:
    return {"log": {
        "version": HAR_VERSION,
        "creator": {"name": "guard", "version": __version__},
        "entries": [entry(e) for e in events if e.get("kind", "flow") == "flow"],
    }}


def entry(e: dict[str, Any]) -> dict[str, Any]:
    req, resp = e.get("request") or {}, e.get("response") or {}
    duration = float(e.get("duration_ms") or 0.0)
    return {
        "startedDateTime": e.get("time"),
        "time": duration,
        "request": {
            "method": e.get("method"),
            "url": e.get("url"),
            "httpVersion": "HTTP/1.1",
            "cookies": [],
            "headers": _headers(req.get("headers")),
            "queryString": [{"name": k, "value": v} for k, v in
                            parse_qsl(urlsplit(str(e.get("url"))).query,
                                      keep_blank_values=True)],
            **_post_data(req.get("body"), req.get("headers")),
            "headersSize": -1,
            "bodySize": _size(req.get("body")),
        },
        "response": {
            "status": e.get("status") or 0,
            "statusText": _reason(e.get("status")),
            "httpVersion": "HTTP/1.1",
            "cookies": [],
            "headers": _headers(resp.get("headers")),
            "content": _content(resp.get("body"), resp.get("headers")),
            "redirectURL": _header(resp.get("headers"), "location"),
            "headersSize": -1,
            "bodySize": _size(resp.get("body")),
        },
        "cache": {},
        "timings": {"send": 0, "wait": duration, "receive": 0},
        "comment": f"guard {e.get('action')} by {e.get('rule')}",
        "_guard": {k: e.get(k) for k in ("seq", "sandbox", "client", "rule", "action",
                                         "reason", "upstream", "changes", "error")},
    }


def _headers(pairs: Any) -> list[dict[str, str]]:
    return [{"name": str(k), "value": str(v)} for k, v in pairs or []]


def _header(pairs: Any, name: str) -> str:
    for k, v in pairs or []:
        if str(k).lower() == name:
            return str(v)
    return ""


def _size(body: Any) -> int:
    return int(body.get("size", -1)) if isinstance(body, dict) and "size" in body else \
        (0 if body is None else -1)


def _text(body: dict[str, Any]) -> dict[str, Any]:
    if "base64" in body:
        return {"text": body["base64"], "encoding": "base64"}
    return {"text": str(body.get("text", ""))}


def _post_data(body: Any, headers: Any) -> dict[str, Any]:
    if not isinstance(body, dict) or "size" not in body:
        return {}
    mime = _header(headers, "content-type")
    data: dict[str, Any] = {"mimeType": mime, **_text(body)}
    if mime.startswith("application/x-www-form-urlencoded") and "text" in body:
        data["params"] = [{"name": k, "value": v}
                          for k, v in parse_qsl(body["text"], keep_blank_values=True)]
    if body.get("truncated"):
        data["comment"] = f"truncated; full body sha256 {body.get('sha256')}"
    if "encoding" in data:  # postData has no encoding field in HAR 1.2: keep it as a note
        data.pop("encoding")
        data["comment"] = (data.get("comment", "") + " base64-encoded").strip()
    return {"postData": data}


def _content(body: Any, headers: Any) -> dict[str, Any]:
    mime = _header(headers, "content-type") or "x-unknown"
    if not isinstance(body, dict) or "size" not in body:
        return {"size": 0, "mimeType": mime, **({"comment": "streamed, not recorded"}
                                                 if isinstance(body, dict) else {})}
    content = {"size": int(body["size"]), "mimeType": mime, **_text(body)}
    if body.get("truncated"):
        content["comment"] = f"truncated; full body sha256 {body.get('sha256')}"
    return content


def _reason(status: Any) -> str:
    try:
        return HTTPStatus(int(status)).phrase
    except (TypeError, ValueError):
        return ""
