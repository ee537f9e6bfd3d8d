"""Send one smallest valid request per operation of a pack's description through guard's
own decision and simulation path (engine, hand-written handlers, generated operations; no
proxy) and check each answer: a 2xx whose body validates against the operation's response
schema.

Creates run first, so later operations find what they name; ids of objects the API gives
no way to create are sample ids (the open world makes them on first reference). Deletes
run last.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from guard.openapi.api import OpenApi
from guard.openapi.documents import is_document
from guard.openapi.operations import Operation, normalize
from guard.openapi.sample import encode_body, encode_form, request_parts
from guard.openapi.validate import ANY
from guard.request import Request

ORDER = {"create": 0, "none": 1, "list": 2, "search": 2, "retrieve": 3, "update": 4,
         "action": 5, "delete": 9}


@dataclass
class Result:
    operation: Operation
    rule_id: str
    status: int
    problem: str | None  # why it does not count (None: 2xx and valid)
    newer: str | None = None  # valid but for a field the newer object shape dropped

    @property
    def family(self) -> str:
        segs = [s for s in self.operation.path.split("/") if s and not s.startswith("{")]
        if len(segs) > 1 and segs[0] == "v2":
            return "v2/" + segs[1]
        return segs[1] if len(segs) > 1 and segs[0] == "v1" else (segs[0] if segs else "/")


@dataclass
class Report:
    results: list[Result] = field(default_factory=list)

    @property
    def ok(self) -> list[Result]:
        return [r for r in self.results if r.problem is None]

    def families(self) -> dict[str, tuple[int, int]]:
        out: dict[str, list[int]] = {}
        for r in self.results:
            row = out.setdefault(r.family, [0, 0])
            row[0] += r.problem is None
            row[1] += 1
        return {k: (v[0], v[1]) for k, v in sorted(out.items())}


def measure(api: OpenApi, host: str, decide: Any, respond: Any, *,
            headers: Iterable[tuple[str, str]] = (), sandbox: str = "measure",
            extras: dict[tuple[str, str], dict[str, Any]] | None = None,
            setups: dict[tuple[str, str], list[tuple[str, dict[str, Any]]]] | None = None,
            keys: dict[tuple[str, str], tuple[str, str]] | None = None) -> Report:
    """``decide(Request) -> Decision`` and ``respond(Decision, Request) -> Response``
    are guard's engine and simulator (see tools/measure_stripe.py). ``extras`` adds
    parameters an operation needs beyond what its description marks required; a value
    ``"{customer}"`` there (or a required parameter named like an object type) becomes the
    id of an object of that type made earlier. ``setups`` makes the object an operation
    works on first (``POST path`` with parameters, then further ``POST``s where ``{id}`` is
    the new object's id), for actions that need a fresh object in a given state (capturing
    an uncaptured charge, voiding a finalized invoice). ``keys`` names, for an operation
    whose key another operation hands out, the ``POST`` path (a JSON body) and the field of
    its answer to send as the Bearer key (Stripe's meter event stream takes a session's
    token)."""
    report = Report()
    ids: dict[str, str] = {}  # normalized collection path -> an id created there
    refs: dict[str, str] = {}  # object type -> an id created
    ops = sorted(api.operations, key=lambda o: (
        ORDER.get(o.role, 5), -o.path.count("/") if o.role == "delete" else o.path.count("/"),
        o.path, o.method))
    creates = [o for o in ops if o.role == "create"]
    # Creates that name other objects may need them made first: retry those that fail.
    for attempt in range(3):
        failed = []
        for op in creates:
            result = _send(api, op, host, decide, respond, headers, sandbox, extras, ids,
                           refs, setups or {}, keys or {})
            if result.problem is not None and attempt < 2:
                failed.append(op)
            else:
                report.results.append(result)
        creates = failed
    for op in ops:
        if op.role != "create":
            report.results.append(_send(api, op, host, decide, respond, headers, sandbox,
                                        extras, ids, refs, setups or {}, keys or {}))
    return report


def _send(api: OpenApi, op: Operation, host: str, decide: Any, respond: Any,
          headers: Iterable[tuple[str, str]], sandbox: str,
          extras: dict[tuple[str, str], dict[str, Any]] | None, ids: dict[str, str],
          refs: dict[str, str], setups: dict[tuple[str, str], list[tuple[str, dict[str, Any]]]],
          keys: dict[tuple[str, str], tuple[str, str]] | None = None) -> Result:
    key_from = (keys or {}).get((op.method, op.path))
    if key_from is not None:
        token = _key(host, decide, respond, headers, sandbox, *key_from)
        headers = [*((k, v) for k, v in headers if k.lower() != "authorization"),
                   *([("Authorization", f"Bearer {token}")] if token else [])]
    local = dict(ids)
    made: str | None = None
    for step_path, step_params in setups.get((op.method, op.path), []):
        got = _post(api, host, decide, respond, headers, sandbox,
                    step_path.replace("{id}", made or ""), _refs(step_params, refs))
        if made is None and step_path == op.collection:
            made = got
    if made is not None and op.collection is not None:
        local[op.collection] = made
    path = _fill(op, local)
    query, body, media = request_parts(op)
    extra = (extras or {}).get((op.method, op.path))
    if extra:
        if op.method in ("GET", "DELETE"):
            query.update(extra)
        else:
            body = {**(body or {}), **extra}
            media = media or "application/x-www-form-urlencoded"
    query, body = _refs(query, refs), _refs(body, refs)
    if op.method in ("GET", "DELETE") and body:
        query.update(body)
        body = None
    host = str(op.raw.get("x-guardHost") or host)  # an operation served on its own host
    url = f"https://{host}{path}"
    if query:
        url += "?" + urlencode(encode_form(query))
    req = Request.build(op.method, url, headers=[*headers, *(
        [("Content-Type", media if media != "multipart/form-data" else
          "application/x-www-form-urlencoded")] if media and body else [])],
        body=encode_body(body, "application/x-www-form-urlencoded"
                         if media == "multipart/form-data" else media), sandbox=sandbox)
    decision = decide(req)
    rule_id = decision.rule_id
    try:
        response = respond(decision, req)
    except Exception as e:  # noqa: BLE001 (counted as a failure and shown)
        return Result(op, rule_id, 500, f"{type(e).__name__}: {e}")
    problem, newer = _problem(api, op, response.status, response.body)
    result = Result(op, rule_id, response.status, problem, newer)
    if op.role in ("create", "list") and 200 <= response.status < 300:
        _remember(op, response.body, ids, refs)
    return result


def _remember(op: Operation, body: bytes, ids: dict[str, str], refs: dict[str, str]) -> None:
    try:
        data = json.loads(body)
    except ValueError:
        return
    if isinstance(data, dict) and isinstance(data.get("data"), list) and data["data"]:
        data = data["data"][0]
    if isinstance(data, dict) and isinstance(data.get("id"), str) and op.collection:
        ids.setdefault(op.collection, data["id"])
        if isinstance(data.get("object"), str):
            refs.setdefault(data["object"], data["id"])


def _post(api: OpenApi, host: str, decide: Any, respond: Any,
          headers: Iterable[tuple[str, str]], sandbox: str, path: str,
          params: dict[str, Any]) -> str | None:
    req = Request.build("POST", f"https://{host}{path}", headers=[
        *headers, ("Content-Type", "application/x-www-form-urlencoded")],
        body=urlencode(encode_form(params)), sandbox=sandbox)
    response = respond(decide(req), req)
    try:
        made = json.loads(response.body)
    except ValueError:
        return None
    return made.get("id") if isinstance(made, dict) else None


def _key(host: str, decide: Any, respond: Any, headers: Iterable[tuple[str, str]],
         sandbox: str, path: str, field: str) -> str | None:
    req = Request.build("POST", f"https://{host}{path}", headers=[
        *headers, ("Content-Type", "application/json")], body=b"{}", sandbox=sandbox)
    try:
        made = json.loads(respond(decide(req), req).body)
    except ValueError:
        return None
    value = made.get(field) if isinstance(made, dict) else None
    return value if isinstance(value, str) else None


def _refs(data: Any, refs: dict[str, str]) -> Any:
    if isinstance(data, dict):
        return {k: refs.get(k, v) if isinstance(v, str) and v == f"sample_{k}" else
                _refs(v, refs) for k, v in data.items()}
    if isinstance(data, list):
        return [_refs(v, refs) for v in data]
    if isinstance(data, str) and data.startswith("{") and data.endswith("}"):
        return refs.get(data[1:-1], data)
    return data


def _fill(op: Operation, ids: dict[str, str]) -> str:
    segs = op.path.split("/")
    out = []
    for i, s in enumerate(segs):
        if s.startswith("{") and s.endswith("}"):
            collection = normalize("/".join(segs[:i]))
            out.append(ids.get(collection, f"sample_{s[1:-1]}"))
        else:
            out.append(s)
    return "/".join(out)


def _problem(api: OpenApi, op: Operation, status: int, body: bytes
             ) -> tuple[str | None, str | None]:
    """(why the answer does not count, or None; the fields it lacks only because the
    newer object shape lacks them, or None)."""
    if not 200 <= status < 300:
        return f"status {status}: {body[:300].decode('utf-8', 'replace')}", None
    if op.schema is None:
        return None, None
    if op.media_type is not None and is_document(api.spec, op.media_type, op.schema):
        return (None if body else "an empty document"), None
    try:
        data = json.loads(body) if body else None
    except ValueError:
        return "answer is not JSON", None
    dropped: list[str] = []
    for _ in range(50):
        issue = api.conforms(data, op.schema)
        if issue is None:
            return None, ", ".join(dropped) or None
        where = _newer_shape(api, data, issue)
        if where is None:
            return f"invalid answer: {issue.param}: {issue.message}", None
        dropped.append(where)
    return "invalid answer: too many differences", None


def _newer_shape(api: OpenApi, data: Any, issue: Any) -> str | None:
    """When a required field is missing and Stripe's newer example object of that type
    lacks it too (it was removed or moved since the description's version), put a
    placeholder there so the rest of the answer is checked, and name the field."""
    if issue.kind != "missing" or not issue.param:
        return None
    parts = [p for p in re.split(r"[.\[\]]+", issue.param) if p]
    node = data
    for part in parts[:-1]:
        if isinstance(node, list) and (part.isascii() and part.isdigit()) and int(part) < len(node):
            node = node[int(part)]
        elif isinstance(node, dict) and part in node:
            node = node[part]
        else:
            return None
    if not isinstance(node, dict) or not isinstance(node.get("object"), str):
        return None
    fixture = api.fixtures.objects.get(node["object"])
    if not isinstance(fixture, dict) or parts[-1] in fixture:
        return None
    node[parts[-1]] = ANY
    return f"{node['object']}.{parts[-1]}"
