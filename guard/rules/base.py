"""Building blocks of the rule file format shared by rules and test cases: the strict base
model, id and host patterns, and value matchers."""

from __future__ import annotations

import re
from typing import Annotated, Any

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
# A label after the first may be ``*`` (exactly one label): ``email.*.amazonaws.com``.
HOST = rf"^(\*|(\*\.)?{_LABEL}(\.({_LABEL}|\*))*|\[?[0-9a-f:.]+\]?)$"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class ValueMatch(Strict):
    """How one value (header, query parameter, form or JSON field, body) must look.

    A plain scalar in a rule means ``equals``; a list means ``in``.
    """

    equals: str | int | float | bool | None = Field(
        None, description="equal to this value (compared as text: 1 equals '1', true 'true')"
    )
    in_: list[str | int | float | bool] | None = Field(
        None, alias="in", description="equal to one of these values"
    )
    regex: str | None = Field(
        None, description="a Python regular expression found anywhere in the value (re.search); "
        "anchor with ^ and $"
    )
    prefix: str | None = Field(None, description="the value starts with this text")
    suffix: str | None = Field(None, description="the value ends with this text")
    contains: str | None = Field(None, description="the value contains this text")
    present: bool | None = Field(
        None, description="true: the value must be there (any value); false: it must be absent"
    )
    not_: ValueMatch | None = Field(
        None, alias="not", description="a matcher that must NOT hold"
    )

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
