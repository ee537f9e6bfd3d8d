"""The rule file format, as pydantic models. ``guard schema`` exports these as JSON Schema."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    field_validator,
    model_validator,
)

RULE_ID = r"^[a-z0-9][a-z0-9_-]*(\.[a-z0-9][a-z0-9_-]*)+$"
_LABEL = r"[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?"
HOST = rf"^(\*|(\*\.)?{_LABEL}(\.{_LABEL})*|\[?[0-9a-f:.]+\]?)$"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class ValueMatch(Strict):
    """How one value (header, query parameter, form or JSON field, body) must look.

    A plain scalar in a rule means ``equals``; a list means ``in``.
    """

    equals: str | int | float | bool | None = None
    in_: list[str | int | float | bool] | None = Field(None, alias="in")
    regex: str | None = None
    prefix: str | None = None
    suffix: str | None = None
    contains: str | None = None
    present: bool | None = None
    not_: ValueMatch | None = Field(None, alias="not")

    @field_validator("regex")
    @classmethod
    def _regex_compiles(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                re.compile(v)
            except re.error as e:
                raise ValueError(f"invalid regular expression {v!r}: {e}") from None
        return v

    @model_validator(mode="after")
    def _not_empty(self) -> ValueMatch:
        if not self.model_fields_set:
            raise ValueError(
                "empty matcher: use one of equals, in, regex, prefix, suffix, contains, "
                "present, not"
            )
        return self


Scalar = str | int | float | bool | None


def _matcher_kind(value: Any) -> str:
    if isinstance(value, (dict, ValueMatch)):
        return "value-match"
    return "list" if isinstance(value, list) else "scalar"


# One member is chosen by shape, so an error names that member's problem only.
Matcher = Annotated[
    Annotated[ValueMatch, Tag("value-match")]
    | Annotated[list[str | int | float | bool], Tag("list")]
    | Annotated[Scalar, Tag("scalar")],
    Discriminator(_matcher_kind),
]


class Match(Strict):
    """Conditions a request must meet; all given conditions must hold."""

    method: str | list[str] | None = Field(
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

    @field_validator("method")
    @classmethod
    def _methods_upper(cls, v: str | list[str] | None) -> str | list[str] | None:
        if isinstance(v, str):
            return v.upper()
        if isinstance(v, list):
            return [m.upper() for m in v]
        return v


class Store(Strict):
    """Keep the simulated response body in the sandbox's world store."""

    collection: str
    id: str | None = Field(None, description="template for the object id; default: the body's id")


class Missing(Strict):
    """The response when ``from_store`` finds nothing."""

    status: int = 404
    headers: dict[str, str] = Field(default_factory=dict)
    body: Any = None
    template: str | None = None


class FromStore(Strict):
    """Answer with an object from the sandbox's world store."""

    collection: str
    id: str = Field(description="template for the id, e.g. '{{ captures.id }}'")
    missing: Missing = Field(default_factory=Missing)


class Respond(Strict):
    """How a simulated request is answered."""

    status: int = Field(200, ge=100, le=599)
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
        description="template file, relative to the rule file or fixtures/templates: "
        "*.yaml is a data tree like body, *.json.j2 renders JSON text, anything else text",
    )
    handler: str | None = Field(
        None, description="a provider handler in guard.providers, e.g. stripe.create_customer"
    )
    content_type: str | None = Field(None, description="default: application/json for data")
    store: Store | None = None
    from_store: FromStore | None = None

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
    description: str = ""
    hosts: list[Annotated[str, Field(pattern=HOST)]] | None = Field(
        None, description="hosts this rule applies to; default: the pack's hosts"
    )
    priority: int = Field(0, description="higher wins; see README 'Precedence'")
    match: Match = Field(default_factory=Match)
    action: Literal["simulate", "block", "allow"]
    reason: str | None = Field(None, description="why (shown in block responses and the audit)")
    respond: Respond | None = None
    allow_private: bool = Field(
        False, description="allow: permit private, loopback and link-local upstream addresses"
    )

    @field_validator("hosts")
    @classmethod
    def _hosts_lower(cls, v: list[str] | None) -> list[str] | None:
        return [h.lower() for h in v] if v is not None else None

    @model_validator(mode="after")
    def _action_fits(self) -> Rule:
        if self.action == "simulate" and self.respond is None:
            raise ValueError("action simulate needs a respond section")
        if self.action != "simulate" and self.respond is not None:
            raise ValueError(f"action {self.action} takes no respond section")
        if self.allow_private and self.action != "allow":
            raise ValueError("allow_private only applies to action allow")
        return self


class Pack(Strict):
    """A rule file: one pack of rules, usually for one provider."""

    schema_: str | None = Field(None, alias="$schema")
    pack: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$", description="pack name")
    description: str = ""
    hosts: list[Annotated[str, Field(pattern=HOST)]] = Field(
        default_factory=list, description="default hosts for the pack's rules"
    )
    rules: list[Rule] = Field(default_factory=list)
    tests: list[dict[str, Any]] = Field(
        default_factory=list, description="rule test cases run by 'guard test'"
    )

    @field_validator("hosts")
    @classmethod
    def _hosts_lower(cls, v: list[str]) -> list[str]:
        return [h.lower() for h in v]
