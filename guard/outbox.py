"""The outbox: every message guard kept from being sent, as one structured record.

The classic sandbox accident is "10,000 test emails to real customers". Every simulated
send (an email through SendGrid, Mailgun, Postmark, SES, Resend or the SMTP sink, an SMS
through Twilio, a Slack message, a GitHub issue, comment or pull request) is written to the
``outbox`` collection of the sandbox's world, inside the request's transaction: if the
simulated request fails, its outbox record is rolled back with everything else.

Records are plain JSON objects (schema version ``v``), so they survive the ``--state``
journal and read the same from ``guard outbox``, the audit of changes and any agent that
looks at its world.

>>> from guard.world import MemoryStore
>>> world = MemoryStore(seed=1).world("agent-1")
>>> with world.transaction():
...     rec = add(world, Message("sendgrid", sender="me@a.test", to=["you@b.test"],
...                              subject="Hi", text="Hello"), rule_id="sendgrid.mail.send")
>>> rec["id"], rec["provider"], rec["to"], rec["sandbox"]
('out_000001', 'sendgrid', ['you@b.test'], 'agent-1')
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from guard.errors import WorldError

if TYPE_CHECKING:
    from guard.synth.context import SimContext
    from guard.world.store import World

COLLECTION = "outbox"
REDACT_OPTION = "outbox_redact"  # simulator option: the audit redactor's data() function
RECORD_VERSION = 1
KINDS = ("email", "sms", "chat", "issue", "comment", "pull_request")


@dataclass(frozen=True)
class Attachment:
    """An attachment as the outbox keeps it: name, size and type, never the content."""

    name: str
    size: int | None = None  # None when only a URL was given (Twilio MediaUrl)
    content_type: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "size": self.size, "content_type": self.content_type}


@dataclass
class Message:
    """What a provider would have delivered. ``provider_id`` is the id guard answered with
    (SendGrid's X-Message-Id, a Twilio SM sid, a Slack ts, a GitHub issue number ...);
    ``extra`` holds provider specifics (Slack channel, GitHub repository, tags)."""

    provider: str
    kind: str = "email"
    sender: str | None = None
    to: list[str] = field(default_factory=list)
    cc: list[str] = field(default_factory=list)
    bcc: list[str] = field(default_factory=list)
    subject: str | None = None
    text: str | None = None
    html: str | None = None
    attachments: list[Attachment] = field(default_factory=list)
    provider_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    #: False when guard made ``provider_id`` (kept as answered); True when it came from the
    #: request (an SMTP Message-ID header) and so is redacted like the rest.
    id_from_request: bool = False

    def fields(self) -> dict[str, Any]:
        if self.kind not in KINDS:
            raise ValueError(f"unknown outbox kind {self.kind!r} (one of {', '.join(KINDS)})")
        return {
            "provider": self.provider, "kind": self.kind, "from": self.sender,
            "to": list(self.to), "cc": list(self.cc), "bcc": list(self.bcc),
            "subject": self.subject, "text": self.text, "html": self.html,
            "attachments": [a.as_dict() for a in self.attachments],
            "provider_id": self.provider_id, "extra": dict(self.extra),
        }


def add(world: World, message: Message, *, rule_id: str,
        redact: Callable[[Any], Any] | None = None) -> dict[str, Any]:
    """Write ``message`` to the world's outbox and return the stored record.

    Call it inside the request's transaction (handlers always are), so a failed request
    leaves no record behind. Ids count up per sandbox: ``out_000001``, ``out_000002``, ...
    ``redact`` (guard run passes the audit log's) replaces secrets in the message before it
    is stored, so the outbox and the audit log hold the same text and fingerprints.
    """
    number = world.next(COLLECTION)
    fields = message.fields()
    if redact is not None:
        if message.id_from_request:
            fields = redact(fields)
        else:
            # An id guard answered with is not request data: a random Mailgun id's 14
            # digits can pass the card check, and the agent finds its message by that id.
            provider_id = fields.pop("provider_id")
            fields = {**redact(fields), "provider_id": provider_id}
    record = {
        "v": RECORD_VERSION,
        "id": f"out_{number:06d}",
        "time": world.clock.now().isoformat(timespec="seconds").replace("+00:00", "Z"),
        "sandbox": world.name,
        "rule": rule_id,
        **fields,
    }
    return world.put(COLLECTION, record)


def record(ctx: SimContext, message: Message) -> dict[str, Any]:
    """:func:`add` for a provider handler: the handler's world and rule id (and the
    simulator's outbox redaction, when it has one)."""
    return add(ctx.world, message, rule_id=ctx.rule_id,
               redact=ctx.options.get(REDACT_OPTION))


def recipients(rec: dict[str, Any]) -> list[str]:
    """Every recipient of a record: to, cc and bcc."""
    return [*rec.get("to", []), *rec.get("cc", []), *rec.get("bcc", [])]


def matches(rec: dict[str, Any], *, provider: str | None = None, to: str | None = None,
            sandbox: str | None = None) -> bool:
    """The outbox filters: provider and sandbox exactly, ``to`` as a case-insensitive
    substring of any recipient (so ``--to example.com`` finds a whole domain)."""
    if provider is not None and rec.get("provider") != provider:
        return False
    if sandbox is not None and rec.get("sandbox") != sandbox:
        return False
    if to is not None:
        needle = to.lower()
        return any(needle in r.lower() for r in recipients(rec))
    return True


def read_state(state_dir: Path) -> list[dict[str, Any]]:
    """Every outbox record of every sandbox journaled under ``state_dir`` (``--state``),
    oldest first. Raises :class:`WorldError` when the directory is missing or a journal is
    damaged."""
    from guard.world import MemoryStore

    if not state_dir.is_dir():
        raise WorldError(f"no state directory {state_dir} (start guard with --state {state_dir})")
    store = MemoryStore(state_dir=state_dir)
    records: list[dict[str, Any]] = []
    for sandbox in store.sandboxes():
        records.extend(store.world(sandbox).list(COLLECTION))
    records.sort(key=lambda r: (str(r.get("time", "")), str(r.get("sandbox", "")),
                                str(r.get("id", ""))))
    return records
