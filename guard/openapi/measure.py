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
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from guard.openapi.api import OpenApi
from guard.openapi.operations import Operation, normalize
from guard.openapi.sample import encode_body, encode_form, request_parts
from guard.request import Request

ORDER = {"create": 0, "none": 1, "list": 2, "search": 2, "retrieve": 3, "update": 4,
         "action": 5, "delete": 9}


@dataclass
class Result:
    operation: Operation
    rule_id: str
    status: int
    problem: str | None  # why it does not count (None: 2xx and valid)

    @property
    def family(self) -> str:
        segs = [s for s in self.operation.path.split("/") if s and not s.startswith("{")]
        return segs[1] if len(segs) > 1 and segs[0] in ("v1", "v2") else (segs[0] if segs
                                                                          else "/")


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


def measure(api: OpenApi, host: str, decide: object, respond: object, *,
            headers: Iterable[tuple[str, str]] = (), sandbox: str = "measure",
            extras: dict[tuple[str, str], dict[str, Any]] | None = None) -> Report:
    """``decide(Request) -> Decision`` and ``respond(Decision, Request) -> Response``
    are guard's engine and simulator (see tools/measure_stripe.py). ``extras`` adds
    parameters an operation needs beyond what its description marks required; a value
    ``"{customer}"`` there (or a required parameter named like an object type) becomes the
    id of an object of that type made earlier."""
    report = Report()
    ids: dict[str, str] = {}  # normalized collection path -> an id created there
    refs: dict[str, str] = {}  # object type -> an id created
    ops = sorted(api.operations, key=lambda o: (ORDER.get(o.role, 5), o.path.count("/"),
                                                o.path, o.method))
    for op in ops:
        path = _fill(op, ids)
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
        url = f"https://{host}{path}"
        if query:
            url += "?" + urlencode(encode_form(query))
        req = Request.build(op.method, url, headers=[*headers, *(
            [("Content-Type", media if media != "multipart/form-data" else
              "application/x-www-form-urlencoded")] if media and body else [])],
            body=encode_body(body, "application/x-www-form-urlencoded"
                             if media == "multipart/form-data" else media), sandbox=sandbox)
        decision = decide(req)  # type: ignore[operator]
        rule_id = decision.rule_id
        try:
            response = respond(decision, req)  # type: ignore[operator]
        except Exception as e:  # noqa: BLE001 (counted as a failure and shown)
            report.results.append(Result(op, rule_id, 500, f"{type(e).__name__}: {e}"))
            continue
        report.results.append(Result(op, rule_id, response.status,
                                     _problem(api, op, response.status, response.body)))
        if op.role == "create" and 200 <= response.status < 300:
            try:
                created = json.loads(response.body)
            except ValueError:
                continue
            if isinstance(created, dict) and isinstance(created.get("id"), str) and \
                    op.collection is not None:
                ids.setdefault(op.collection, created["id"])
                if isinstance(created.get("object"), str):
                    refs.setdefault(created["object"], created["id"])
    return report


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


def _problem(api: OpenApi, op: Operation, status: int, body: bytes) -> str | None:
    if not 200 <= status < 300:
        return f"status {status}: {body[:300].decode('utf-8', 'replace')}"
    if op.schema is None:
        return None
    try:
        data = json.loads(body) if body else None
    except ValueError:
        return "answer is not JSON"
    issue = api.conforms(data, op.schema)
    return None if issue is None else f"invalid answer: {issue.param}: {issue.message}"
