"""guard.outbox: records, ids, filters, and rollback with the request's transaction."""

from __future__ import annotations

import pytest

from guard import outbox
from guard.world import MemoryStore


def message(**kw) -> outbox.Message:
    return outbox.Message("postmark", sender="a@x.test", to=["Bob <bob@y.test>"], **kw)


def test_a_failed_request_leaves_no_record_and_does_not_use_up_an_id():
    world = MemoryStore(seed=1).world("s1")
    with pytest.raises(RuntimeError), world.transaction():
        outbox.add(world, message(subject="lost"), rule_id="r.x")
        raise RuntimeError("the handler failed after recording")
    assert world.list("outbox") == []
    with world.transaction():
        rec = outbox.add(world, message(subject="kept"), rule_id="r.x")
    assert rec["id"] == "out_000001" and world.list("outbox")[0]["subject"] == "kept"


def test_filters_match_provider_sandbox_and_any_recipient_case_insensitively():
    world = MemoryStore(seed=1).world("s1")
    with world.transaction():
        rec = outbox.add(world, message(cc=["Carol@Corp.test"]), rule_id="r.x")
    assert outbox.matches(rec, to="corp.TEST") and outbox.matches(rec, to="bob@")
    assert not outbox.matches(rec, to="dave")
    assert outbox.matches(rec, provider="postmark", sandbox="s1")
    assert not outbox.matches(rec, provider="mailgun")
    assert not outbox.matches(rec, sandbox="s2")


def test_an_unknown_kind_is_refused():
    with pytest.raises(ValueError, match="unknown outbox kind"):
        message(kind="fax").fields()


def test_redaction_keeps_the_id_guard_answered_with():
    """The agent finds its message by the id it was given: a random Mailgun id whose 14
    digits pass the card check stays as it was, while a card in the text is replaced."""
    from guard.audit.redact import Redactor

    world = MemoryStore(seed=1).world("s1")
    card = "49609096401204"  # Luhn-valid, as a Mailgun id's digits can be by chance
    with world.transaction():
        rec = outbox.add(world, message(text=f"card {card}",
                                        provider_id=f"{card}.d1b996513ebcd922@mg.example.com"),
                         rule_id="r.x", redact=Redactor(b"k" * 16).data)
    assert rec["provider_id"] == f"{card}.d1b996513ebcd922@mg.example.com"
    assert card not in rec["text"]


def test_an_id_from_the_request_is_redacted():
    """An SMTP Message-ID is the sender's own header: a secret hidden there is replaced."""
    from guard.audit.redact import Redactor

    world = MemoryStore(seed=1).world("s1")
    key = "sk_live_51HxQvZKpL0ngZ3r0MessageIdLeak"
    with world.transaction():
        rec = outbox.add(world, message(provider_id=f"{key}@evil.test", id_from_request=True),
                         rule_id="r.x", redact=Redactor(b"k" * 16).data)
    assert key not in rec["provider_id"]
