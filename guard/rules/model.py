"""The rule file format, as pydantic models. ``guard schema`` exports these as JSON Schema
(docs/rules.schema.json), so every description here is what an editor shows on hover."""

from __future__ import annotations

import difflib
from typing import Annotated, Any, Literal

from pydantic import Field, WithJsonSchema, field_validator, model_validator

from guard.faults import Faults
from guard.rules.base import HOST, RULE_ID, Matcher, Scalar, Strict, ValueMatch
from guard.rules.casemodel import Case, CaseExpect, CaseFile, CaseRequest, Expected

__all__ = [
    "HOST", "RULE_ID", "Case", "CaseExpect", "CaseFile", "CaseRequest", "Expected", "FromStore",
    "Match", "Matcher", "Missing", "OpenApiSource", "Pack", "Respond", "Rule", "Scalar", "Store",
    "Strict",
    "ValueMatch", "WorldPartition",
]


# HTTP's methods (RFC 9110), PATCH (RFC 5789), WebDAV's and QUERY: a misspelt method
# (GETT) would otherwise be a rule that silently never matches.
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT",
           "QUERY", "PROPFIND", "PROPPATCH", "MKCOL", "COPY", "MOVE", "LOCK", "UNLOCK",
           "REPORT", "SEARCH", "*")
_METHOD_ENUM = {"enum": [*METHODS, *(m.lower() for m in METHODS[:-1])]}
_METHOD_SCHEMA = WithJsonSchema({"anyOf": [
    {"type": "string", **_METHOD_ENUM},
    {"type": "array", "items": {"type": "string", **_METHOD_ENUM}}, {"type": "null"}],
    "description": "HTTP method(s), e.g. POST or [GET, HEAD]; * or absent for any"})


def _method(m: str) -> str:
    up = m.upper()
    if up in METHODS:
        return up
    near = difflib.get_close_matches(up, METHODS[:-1], n=1)
    raise ValueError(f"unknown HTTP method {m!r}" + (f" (did you mean {near[0]}?)" if near
                                                     else "") +
                     f"; methods are {', '.join(METHODS[:-1])}, or * for any")


class Match(Strict):
    """Conditions a request must meet; all given conditions must hold."""

    method: Annotated[str | list[str] | None, _METHOD_SCHEMA] = Field(
        None, description="HTTP method(s), e.g. POST or [GET, HEAD]; * or absent for any"
    )
    path: str | list[str] | None = Field(
        None,
        description="path template(s): /v1/customers/{id}; {name:path} spans slashes, "
        "{name:int} only digits, a trailing /** matches any rest",
    )
    query: dict[str, Matcher] = Field(default_factory=dict, description="query parameters")
    headers: dict[str, Matcher] = Field(default_factory=dict, description="request headers")
    form: dict[str, Matcher] = Field(
        default_factory=dict,
        description="form fields (url-encoded or multipart); a.b.c or a[b][c] for nesting",
    )
    json_: dict[str, Matcher] = Field(
        default_factory=dict, alias="json", description="JSON body fields by dotted path"
    )
    body: Matcher | None = Field(None, description="the raw body as text")
    credential: Matcher | None = Field(
        None,
        description="the credential in the Authorization header, however it is sent: the "
        "token of Bearer/Token auth, or the user or the password of Basic auth (decoded); "
        "holds if any of them matches",
    )

    @field_validator("method")
    @classmethod
    def _methods_known(cls, v: str | list[str] | None) -> str | list[str] | None:
        if isinstance(v, str):
            return _method(v)
        if isinstance(v, list):
            return [_method(m) for m in v]
        return v


def _respond_fits(action: str, has_respond: bool) -> str | None:
    if action == "simulate" and not has_respond:
        return "action simulate needs a respond section"
    if action != "simulate" and has_respond:
        return f"action {action} takes no respond section"
    return None


class Store(Strict):
    """Keep the simulated response body in the sandbox's world store."""

    collection: str = Field(description="collection name in the world, e.g. customers")
    id: str | None = Field(None, description="template for the object id; default: the body's id")


class Missing(Strict):
    """The response when ``from_store`` finds nothing."""

    status: int = Field(404, ge=100, le=599, description="status when the object is missing")
    headers: dict[str, str] = Field(
        default_factory=dict, description="response headers; values are templates"
    )
    body: Any = Field(None, description="inline body (a data tree of templates), like respond.body")
    template: str | None = Field(None, description="template file, like respond.template")


class FromStore(Strict):
    """Answer with an object from the sandbox's world store."""

    collection: str = Field(description="collection name in the world, e.g. customers")
    id: str = Field(description="template for the id, e.g. '{{ captures.id }}'")
    missing: Missing = Field(
        default_factory=Missing, description="the answer when there is no such object "
        "(default: 404 with an empty body)"
    )


class Respond(Strict):
    """How a simulated request is answered."""

    status: int = Field(200, ge=100, le=599, description="HTTP status (default 200)")
    headers: dict[str, str] = Field(
        default_factory=dict, description="response headers; values are templates"
    )
    body: Any = Field(
        None,
        description="inline body: a data tree whose string leaves are Jinja templates "
        "(a leaf that is only '{{ expr }}' keeps the value's type)",
    )
    template: str | None = Field(
        None,
        description="template file, relative to the rule file (or templates/ beside it), or "
        "<provider>/<file> in a built-in provider's templates: "
        "*.yaml is a data tree like body, *.json.j2 renders JSON text, anything else text",
    )
    handler: str | None = Field(
        None, description="a provider handler in guard.providers, e.g. stripe.create_customer"
    )
    content_type: str | None = Field(
        None, description="Content-Type; default: application/json for data, text/plain for text"
    )
    store: Store | None = Field(
        None, description="keep the rendered body (an object) in the sandbox's world"
    )
    from_store: FromStore | None = Field(
        None, description="answer with an object kept earlier by store (e.g. GET /things/{id})"
    )

    @model_validator(mode="after")
    def _one_source(self) -> Respond:
        given = [
            k for k in ("body", "template", "handler", "from_store") if getattr(self, k) is not None
        ]
        if len(given) > 1:
            raise ValueError(f"give only one of body, template, handler, from_store (got {given})")
        return self


class Rule(Strict):
    """One rule: where it applies, what it matches, and what happens."""

    id: str = Field(pattern=RULE_ID, description="stable, unique, dotted, lower-case id")
    description: str = Field("", description="what the rule is for; the reason when none is given")
    hosts: list[Annotated[str, Field(pattern=HOST)]] | None = Field(
        None, description="hosts this rule applies to; default: the pack's hosts"
    )
    priority: int = Field(
        0, description="higher is tried first (default 0); see docs/rules.md 'Precedence'"
    )
    match: Match = Field(
        default_factory=Match, description="conditions the request must meet (absent: any "
        "request to the rule's hosts)"
    )
    action: Literal["simulate", "block", "allow"] = Field(
        description="simulate: answer with a synthesized response; block: refuse with a 403 "
        "naming the rule; allow: let it through to the real host"
    )
    reason: str | None = Field(None, description="why (shown in block responses and the audit)")
    respond: Respond | None = Field(
        None, description="how to answer; required for simulate, not allowed otherwise"
    )
    allow_private: bool = Field(
        False, description="allow: permit private, loopback and link-local upstream addresses"
    )
    faults: Faults | None = Field(
        None, description="simulate: failures to inject (latency, error shares, rate limit); "
        "replaces the pack's faults for this rule"
    )
    ports: list[Annotated[int, Field(ge=1, le=65535)]
                | Annotated[str, Field(pattern=r"^\d{1,5}-\d{1,5}$")]] | None = Field(
        None, description="allow: the ports this rule lets through, numbers or ranges such "
        "as '8000-8999' (default: 443 and 80 only)"
    )
    websocket: bool = Field(
        False, description="allow: also let WebSocket upgrades through (their messages are "
        "audited both ways); without it an upgrade is refused"
    )
    ambiguous_paths: Literal["refuse", "allow"] = Field(
        "refuse", description="allow: 'allow' forwards paths servers may read differently "
        "(encoded slashes or dots, backslashes, ; parameters, //, overlong UTF-8); by default "
        "they are refused under guard.ambiguous-path"
    )

    @field_validator("hosts")
    @classmethod
    def _hosts_lower(cls, v: list[str] | None) -> list[str] | None:
        return [h.lower() for h in v] if v is not None else None

    @classmethod
    def raw_problems(cls, data: Any) -> list[tuple[tuple[Any, ...], str]]:
        """Problems of a rule that failed validation which its field errors do not show
        (the checks across fields run only once every field is valid): so that ``guard
        check`` reports a ``respond`` on a block rule next to a misspelt method."""
        if not isinstance(data, dict) or data.get("action") not in ("simulate", "block",
                                                                     "allow"):
            return []
        why = _respond_fits(str(data["action"]), data.get("respond") is not None)
        return [((), why)] if why else []

    @model_validator(mode="after")
    def _action_fits(self) -> Rule:
        why = _respond_fits(self.action, self.respond is not None)
        if why:
            raise ValueError(why)
        if self.action != "allow":
            for name, default in (("allow_private", False), ("ports", None),
                                  ("websocket", False), ("ambiguous_paths", "refuse")):
                if getattr(self, name) != default:
                    raise ValueError(f"{name} only applies to action allow")
        if self.faults is not None and self.action != "simulate":
            raise ValueError("faults only apply to action simulate")
        return self


class OpenApiSource(Strict):
    """Answer every operation of an OpenAPI description (see docs/openapi.md)."""

    spec: str = Field(description="the OpenAPI 3.0/3.1 description, JSON or YAML, optionally "
                      "gzipped; relative to the rule file")
    supplements: list[str] = Field(default_factory=list, description="more descriptions "
                                   "whose operations and component schemas join the spec's "
                                   "(the spec wins where both have one); their $refs may name "
                                   "the spec's components")
    errors: str = Field("rfc9457", description="error shape: rfc9457 (problem documents) or "
                        "a provider's (stripe)")
    paging: Literal["stripe", "cursor", "link", "offset", "none"] = Field(
        "none", description="how lists page: stripe (has_more, starting_after), cursor, link "
        "(Link headers, page/per_page), offset, none")
    fixtures: str | None = Field(None, description="example objects by name (a JSON file "
                                 "beside the rule file), used before generated values")
    closed: bool = Field(False, description="objects that list properties accept no others "
                         "(Stripe rejects unknown nested parameters)")
    strict: bool = Field(False, description="no open world: unknown ids answer not-found even "
                         "in collections the API gives no way to create")
    provider: str | None = Field(None, description="a provider package whose openapi module "
                                 "wraps every operation (auth, idempotency, ...), e.g. stripe")
    rule_prefix: str | None = Field(None, pattern=r"^[a-z0-9][a-z0-9_.-]*$",
                                    description="rule id prefix (default: '<pack>.openapi')")
    base_path: str = Field("", pattern=r"^(/[A-Za-z0-9._~-]+)*$",
                           description="a path before every operation path (the server "
                           "URL's path, e.g. /api)")
    populate: int = Field(0, ge=0, le=50, description="a list of a collection the agent "
                          "cannot create starts with this many objects (open world)")


class WorldPartition(Strict):
    """Sub-worlds inside a sandbox chosen by a request header, as Stripe Connect's
    ``Stripe-Account`` puts a call in a connected account."""

    header: str = Field(description="the header naming the sub-world, e.g. Stripe-Account")
    pattern: str = Field(description="a regular expression the value must match to name a "
                         "sub-world (other values stay in the sandbox's own world)")


class Pack(Strict):
    """A rule file: one pack of rules, usually for one provider."""

    schema_: str | None = Field(None, alias="$schema", description="JSON Schema of this file")
    pack: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$",
                      description="pack name, usually the provider (stripe, acme-crm)")
    description: str = Field("", description="what the pack covers")
    hosts: list[Annotated[str, Field(pattern=HOST)]] = Field(
        default_factory=list, description="default hosts for the pack's rules"
    )
    rules: list[Rule] = Field(default_factory=list, description="the pack's rules")
    faults: Faults | None = Field(
        None, description="failures injected into every simulated answer of the pack "
        "(latency, provider-shaped error shares, per-sandbox rate limit); docs/faults.md")
    world_by_header: WorldPartition | None = Field(
        None, description="requests carrying this header work in their own world inside "
        "the sandbox (Stripe-Account)")
    openapi: OpenApiSource | None = Field(
        None, description="answer every operation of an OpenAPI description; the pack's own "
        "rules override operations one by one")
    tests: list[Case] = Field(
        default_factory=list,
        description="rule test cases run by 'guard test', in order, against one fresh world",
    )

    @field_validator("hosts")
    @classmethod
    def _hosts_lower(cls, v: list[str]) -> list[str]:
        return [h.lower() for h in v]
