"""Small helpers shared by the authoring tests: write rule and case files, run the CLI."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from guard.cli import main

ORDERS_PACK = """
    pack: orders
    hosts: [api.orders.test]
    rules:
      - id: orders.create
        match: {method: POST, path: /v1/orders}
        action: simulate
        respond:
          status: 201
          body:
            id: "{{ ids.stripe('ord') }}"
            object: order
            amount: "{{ request.json.amount }}"
            plan: "{{ request.json.plan }}"
          store: {collection: orders}
      - id: orders.get
        match: {method: GET, path: "/v1/orders/{id}"}
        action: simulate
        respond:
          from_store:
            collection: orders
            id: "{{ captures.id }}"
            missing: {status: 404, body: {error: no such order}}
      - id: orders.list
        match: {method: GET, path: /v1/orders}
        action: simulate
        respond:
          body: {object: list, count: "{{ world.count('orders') }}"}
      - id: orders.admin
        match: {path: "/admin/**"}
        action: block
        reason: no admin for agents
"""


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


def guard(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Run the guard CLI in-process: (exit code, stdout, stderr)."""
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err
