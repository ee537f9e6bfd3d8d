"""Redaction and event building, without a proxy: what is replaced, what is kept, how bodies
are limited."""

from __future__ import annotations

import base64
import hashlib

import pytest

from guard.audit.event import EventBuilder, FlowRecord
from guard.audit.redact import Redactor
from guard.request import Request

R = Redactor(b"test-key-0123456789abcdef")


@pytest.mark.parametrize(("text", "kept"), [
    ("order 1700000000000 at ts 1712345678.123456", True),  # ms timestamp, Slack ts
    ("call +14155550100 or 4155550100", True),  # phone numbers
    ("4242424242424241", True),  # fails Luhn
    ("1234567812345670", True),  # Luhn-valid but no card starts with 1
    ("pk_test_TYooMQauvdEDq54NiTphI7jx is publishable", True),
    ("idempotency_key=abc-123", True),
    ("sk_test_4eC39HqLyjWDarjtT1zdp7dc", False),
    ("4111-1111-1111-1111", False),
])
def test_text_redaction_leaves_ordinary_data_alone(text, kept):
    assert (R.text(text) == text) is kept


@pytest.mark.parametrize(("name", "value", "expected_start"), [
    ("Authorization", "Bearer xoxb-263594206564-FGqddMF8t7Bdg1q0WRaE", "Bearer xoxb-[REDACTED:"),
    ("Authorization", "token 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", "token ghp_[REDACTED:"),
    ("Authorization", "Basic " + base64.b64encode(b"api:key-abc").decode(), "Basic api:[REDACTED:"),
    ("X-Api-Key", "anything-at-all", "[REDACTED:"),
    ("Cookie", "a=1; b=2", "a=[REDACTED:"),
    ("Set-Cookie", "sid=xyz; Path=/; HttpOnly", "sid=[REDACTED:"),
    ("Idempotency-Key", "retry-7", "retry-7"),
    ("Content-Type", "application/json", "application/json"),
])
def test_headers(name, value, expected_start):
    assert R.header(name, value).startswith(expected_start)


def test_fingerprints_are_keyed():
    secret = "hunter2"
    assert R.mark(secret) == R.mark(secret)
    assert R.mark(secret) != Redactor(b"another-key-0123456789").mark(secret)
    assert hashlib.sha256(secret.encode()).hexdigest()[:8] not in R.mark(secret)


def test_an_unkeyed_redactor_uses_a_random_key_per_process():
    assert Redactor().mark("x") != Redactor().mark("x")


def test_json_secret_fields_are_redacted_at_any_depth_and_other_values_survive():
    body = b'{"user": {"password": "p4ss", "name": "ann"}, "creds": {"token": {"v": 1}}}'
    out = R.body(body, "application/json").decode()
    assert "p4ss" not in out and '"name":"ann"' in out and '"v":"[REDACTED:' in out


def test_an_untouched_body_keeps_its_exact_bytes():
    body = b'{ "pretty":  true }'
    assert R.body(body, "application/json") == body
    assert R.body(b"a=1&b=%40", "application/x-www-form-urlencoded") == b"a=1&b=%40"


def test_a_binary_body_is_scanned_too():
    body = b"\x89PNG\x00\xffkey=sk_live_abcdefghijklmnop\x00"
    out = R.body(body, "application/octet-stream")
    assert b"abcdefghijklmnop" not in out and out.startswith(b"\x89PNG\x00\xff")


def record(body: bytes, ctype: str = "text/plain") -> FlowRecord:
    req = Request.build("POST", "https://echo.test/x", headers={"content-type": ctype},
                        body=body)
    return FlowRecord(req, "r", "simulate", status=200)


def test_a_body_over_the_limit_is_truncated_with_a_keyed_digest_of_the_whole():
    body = b"line of text\n" * 1000
    event = EventBuilder(R, body_limit=100).build(record(body))
    logged = event["request"]["body"]
    assert logged["size"] == len(body) and logged["truncated"] is True
    assert logged["text"] == body[:100].decode()
    assert logged["hmac"] == R.digest(body) != hashlib.sha256(body).hexdigest()
    other = EventBuilder(R, body_limit=100).build(record(body + b"x"))["request"]["body"]
    assert other["hmac"] != logged["hmac"]


def test_binary_bodies_are_kept_as_base64_and_streamed_ones_are_marked():
    event = EventBuilder(R).build(record(b"\x00\x01\xfe\xff", "application/octet-stream"))
    assert event["request"]["body"] == {"size": 4, "base64": "AAH+/w=="}
    streamed = record(b"")
    streamed.response_body = None
    assert EventBuilder(R).build(streamed)["response"]["body"] == {"streamed": True}
    assert EventBuilder(R).build(streamed)["request"]["body"] is None


def _corpus_texts() -> list[str]:
    import json
    from pathlib import Path

    corpus = json.loads((Path(__file__).parent / "secrets_corpus.json").read_text())
    texts = [t["value"] for t in corpus["tokens"]] + [c["value"] for c in corpus["cards"]]
    texts += [f"{n['field']}={n['value']}" for n in corpus["named"]]
    texts += [f"X-Amz-Signature={corpus['sigv4']['signature']}", corpus["sigv4"]["access_key"]]
    return texts


@pytest.mark.parametrize("text", _corpus_texts())
def test_every_shape_names_a_literal_each_of_its_matches_contains(text):
    """The redactor runs a shape only when one of its triggers is in the text: a trigger
    that some match lacks would let that secret through."""
    from guard import secret_patterns as P

    embedded = f"note: {text} (end)"
    for shape in P.SHAPES:
        for m in shape.pattern.finditer(embedded):
            assert any(t in m.group(0) for t in shape.triggers), (shape.name, m.group(0))
    for m in P.KEY_VALUE.finditer(embedded.lower()):
        assert any(w in m.group(0) for w in P.KEY_VALUE_WORDS), m.group(0)
        assert "=" in m.group(0) or ":" in m.group(0)
    assert Redactor().text(embedded) != embedded
