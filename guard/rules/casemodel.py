"""Rule test cases, as pydantic models: the ``tests:`` list of a pack, or a ``*.cases.yaml``
file. ``guard test`` runs them; ``guard schema`` exports them with the rule format."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field, Tag, WithJsonSchema, field_validator, model_validator

from guard.rules.base import RULE_ID, Strict, ValueMatch
from guard.rules.paths import parse_path

MATCHER_KEYS = frozenset({"equals", "in", "regex", "prefix", "suffix", "contains", "present",
                          "not"})


def _expected_kind(value: Any) -> str:
    """A mapping made only of matcher keys is a matcher; anything else is compared exactly."""
    if isinstance(value, ValueMatch):
        return "matcher"
    if isinstance(value, dict) and value and set(value) <= MATCHER_KEYS:
        return "matcher"
    return "exact"


Expected = Annotated[
    Annotated[ValueMatch, Tag("matcher")] | Annotated[Any, Tag("exact")],
    Discriminator(_expected_kind),
    WithJsonSchema({
        "description": "an exact value (a list or object is compared as a whole), or a "
        "matcher object like in rules: equals, in, regex, prefix, suffix, contains, "
        "present, not",
    }),
]


class CaseRequest(Strict):
    """The request a case sends (through the engine and simulator, never to the network)."""

    method: str = Field("GET", description="HTTP method (default GET)")
    url: str = Field(pattern=r"^(https?|wss?)://", description="full URL with scheme, host, "
                     "path and query, e.g. https://api.stripe.com/v1/customers?limit=3")
    headers: dict[str, str | int | float | bool] = Field(
        default_factory=dict, description="request headers (names are case-insensitive)"
    )
    form: dict[str, Any] | None = Field(
        None, description="url-encoded form body; nested objects and lists are sent "
        "Stripe-style (metadata[plan]=pro, items[0][price]=p); sets Content-Type"
    )
    json_: Any = Field(None, alias="json", description="JSON body; sets Content-Type")
    body: str | None = Field(None, description="raw body text, sent as is")

    @field_validator("method")
    @classmethod
    def _method_upper(cls, v: str) -> str:
        return v.upper()

    @model_validator(mode="after")
    def _one_body(self) -> CaseRequest:
        given = [k for k in ("form", "json_", "body") if k in self.model_fields_set]
        if len(given) > 1:
            names = [k.rstrip("_") for k in given]
            raise ValueError(f"give only one of form, json, body (got {names})")
        return self


class CaseExpect(Strict):
    """What must happen. Only the fields given are checked."""

    action: Literal["simulate", "block", "allow", "error"] | None = Field(
        None, description="the decision; error means simulating failed (guard answers 500)"
    )
    rule: str | None = Field(None, pattern=RULE_ID, description="id of the deciding rule, or "
                             "guard.default-deny")
    status: int | None = Field(None, ge=100, le=599, description="response status")
    body: dict[str, Expected] | None = Field(
        None, description="response body fields by dotted path (data.0.id) or JSONPath-lite "
        "($.data[0].id); '$' is the whole body (the text when it is not JSON)",
    )
    headers: dict[str, Expected] | None = Field(
        None, description="response headers by name (case-insensitive)"
    )

    @field_validator("body")
    @classmethod
    def _paths_parse(cls, v: dict[str, Any] | None) -> dict[str, Any] | None:
        for key in v or {}:
            parse_path(key)  # ValueError says what is wrong with the path
        return v

    @model_validator(mode="after")
    def _something(self) -> CaseExpect:
        if not self.model_fields_set:
            raise ValueError("expect needs at least one of action, rule, status, body, headers")
        return self


class Case(Strict):
    """One rule test case: a request and what must happen to it."""

    name: str = Field(min_length=1, description="what the case shows, as a sentence")
    request: CaseRequest = Field(description="the request to decide and answer")
    expect: CaseExpect = Field(description="what must happen; only the fields given are checked")


class CaseFile(Strict):
    """A ``*.cases.yaml`` file: cases that may exercise rules of any loaded pack."""

    schema_: str | None = Field(None, alias="$schema", description="JSON Schema of this file")
    description: str = Field("", description="what these cases cover")
    cases: list[Case] = Field(description="run in order against one fresh world")
