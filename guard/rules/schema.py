"""JSON Schema of rule files and case files, generated from the pydantic models.

Editors that speak yaml-language-server read it from a first-line comment::

    # yaml-language-server: $schema=../docs/rules.schema.json

The committed copies (docs/rules.schema.json, docs/cases.schema.json) are kept
equal to this output by a test; regenerate them with ``guard schema --write docs``.

>>> schema = rules_schema()
>>> schema["title"], "Rule" in schema["$defs"], "Case" in schema["$defs"]
('guard rule pack', True, True)
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel

from guard.rules.model import CaseFile, Pack

DIALECT = "https://json-schema.org/draft/2020-12/schema"
FILES = {"rules.schema.json": "rules", "cases.schema.json": "cases"}


def rules_schema() -> dict[str, Any]:
    """The schema of a rule file (one pack, with its rules and test cases)."""
    return _schema(Pack, "guard rule pack", "A guard rule file: one pack of rules for one "
                   "provider, and the test cases 'guard test' runs. See docs/rules.md.")


def cases_schema() -> dict[str, Any]:
    """The schema of a ``*.cases.yaml`` file (the mapping form, with ``cases:``)."""
    return _schema(CaseFile, "guard rule test cases", "A *.cases.yaml file: rule test cases "
                   "that 'guard test' runs in order against one fresh world. See docs/rules.md.")


def dumps(schema: dict[str, Any]) -> str:
    """Stable text for the committed copies: indented, keys in model order, final newline."""
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def _schema(model: type[BaseModel], title: str, description: str) -> dict[str, Any]:
    body = model.model_json_schema(by_alias=True, mode="validation")
    body.pop("title", None)
    body.pop("description", None)
    return {"$schema": DIALECT, "title": title, "description": description, **body}
