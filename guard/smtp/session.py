"""One ESMTP conversation (RFC 5321) over asyncio streams, as a mail server would hold it.

Commands: EHLO/HELO, STARTTLS (RFC 3207), AUTH PLAIN and LOGIN (RFC 4954), MAIL FROM,
RCPT TO, DATA (with dot-unstuffing), RSET, NOOP, VRFY, HELP, QUIT. Any credentials are
accepted and immediately forgotten: they are never logged, stored or passed on. A
complete message is handed to ``deliver``, which keeps it; nothing is ever relayed.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import re
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

MAX_SIZE = 35 * 1024 * 1024
MAX_RECIPIENTS = 1000
LINE_LIMIT = 1024 * 1024
IDLE_SECONDS = 300
_PATH = re.compile(r"^(?P<verb>FROM|TO):\s*<(?P<addr>[^>]*)>(?P<params>.*)$", re.IGNORECASE)


@dataclass
class Envelope:
    """What one accepted message carries, besides its content. No credentials, ever."""

    client: str
    helo: str = ""
    mail_from: str = ""
    rcpt_to: list[str] = field(default_factory=list)
    data: bytes = b""
    tls: bool = False
    authenticated: bool = False
    user: str | None = None  # the AUTH user name; never the password
    sandbox: str | None = None  # the sandbox proven by AUTH (or the address), when checked
    server_name: str | None = None  # the SNI a STARTTLS client asked for


Deliver = Callable[[Envelope], Awaitable[str]]
Authenticate = Callable[[str, str | None, str], str | None]
"""(client, user or None, password) -> the sandbox they prove, or None (refused). Called at
AUTH, and at MAIL without AUTH (user None: only an address binding can prove it)."""
"""Keeps a message and returns its queue id; raises to answer 451 (not accepted)."""


class Reply(Exception):
    """Ends the current command with an SMTP reply."""

    def __init__(self, code: int, text: str) -> None:
        super().__init__(f"{code} {text}")
        self.code, self.text = code, text


class Session:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *,
                 hostname: str, deliver: Deliver, tls: ssl.SSLContext | None,
                 implicit_tls: bool = False,
                 sni: Callable[[object], str | None] = lambda _: None,
                 authenticate: Authenticate | None = None) -> None:
        self.reader, self.writer = reader, writer
        self.authenticate = authenticate
        self.hostname, self.deliver, self.tls, self.sni = hostname, deliver, tls, sni
        peer = writer.get_extra_info("peername")
        self.envelope = Envelope(client=str(peer[0]) if peer else "", tls=implicit_tls)
        if implicit_tls:
            self.envelope.server_name = sni(writer.get_extra_info("ssl_object"))
        self.greeted = False

    async def run(self) -> None:
        await self.reply(220, f"{self.hostname} ESMTP guard sink: messages are kept, "
                         "never relayed")
        while True:
            try:
                line = await asyncio.wait_for(self.reader.readline(), IDLE_SECONDS)
            except (TimeoutError, asyncio.LimitOverrunError, ValueError):
                await self.reply(421, "4.4.2 Error: timeout or line too long")
                return
            if not line:
                return
            verb, _, arg = line.decode("utf-8", "replace").strip().partition(" ")
            verb = verb.upper()
            if verb == "QUIT":
                await self.reply(221, "2.0.0 Bye")
                return
            method = getattr(self, f"do_{verb.lower()}", None) if verb.isalpha() else None
            try:
                if method is None:
                    raise Reply(500, "5.5.2 Error: command not recognized")
                await method(arg.strip())
            except Reply as r:
                await self.reply(r.code, r.text)

    async def reply(self, code: int, *lines: str) -> None:
        for i, text in enumerate(lines):
            sep = "-" if i < len(lines) - 1 else " "
            self.writer.write(f"{code}{sep}{text}\r\n".encode())
        await self.writer.drain()

    def _reset(self) -> None:
        e = self.envelope
        e.mail_from, e.rcpt_to, e.data = "", [], b""

    async def do_ehlo(self, arg: str) -> None:
        if not arg:
            raise Reply(501, "5.5.4 Syntax: EHLO hostname")
        self.envelope.helo, self.greeted = arg, True
        self._reset()
        features = [f"{self.hostname} greets {arg}", f"SIZE {MAX_SIZE}", "8BITMIME",
                    "SMTPUTF8", "PIPELINING", "ENHANCEDSTATUSCODES", "AUTH PLAIN LOGIN"]
        if self.tls is not None and not self.envelope.tls:
            features.append("STARTTLS")
        await self.reply(250, *features, "HELP")

    async def do_helo(self, arg: str) -> None:
        if not arg:
            raise Reply(501, "5.5.4 Syntax: HELO hostname")
        self.envelope.helo, self.greeted = arg, True
        self._reset()
        await self.reply(250, self.hostname)

    async def do_starttls(self, arg: str) -> None:
        if self.tls is None:
            raise Reply(454, "4.7.0 TLS not available")
        if self.envelope.tls:
            raise Reply(503, "5.5.1 Error: TLS already active")
        await self.reply(220, "2.0.0 Ready to start TLS")
        await self.writer.start_tls(self.tls)
        self.envelope.server_name = self.sni(self.writer.get_extra_info("ssl_object"))
        # RFC 3207: forget everything learned before the handshake.
        self.envelope.tls, self.envelope.authenticated, self.greeted = True, False, False
        self._reset()

    async def do_auth(self, arg: str) -> None:
        if not self.greeted:
            raise Reply(503, "5.5.1 Error: send HELO/EHLO first")
        if self.envelope.authenticated:
            raise Reply(503, "5.5.1 Error: already authenticated")
        mechanism, _, initial = arg.partition(" ")
        mechanism = mechanism.upper()
        if mechanism == "PLAIN":
            # authzid NUL authcid NUL password: keep the user (authcid), drop the rest
            plain = await self._secret(initial.strip() or await self._ask(""))
            parts = plain.split(b"\0")
            user = parts[1] if len(parts) == 3 else b""
            password = parts[2] if len(parts) == 3 else b""
        elif mechanism == "LOGIN":
            user = await self._secret(initial.strip() or await self._ask("VXNlcm5hbWU6"))
            password = await self._secret(await self._ask("UGFzc3dvcmQ6"))  # Password:
        else:
            raise Reply(504, "5.5.4 Unrecognized authentication type")
        name = user.decode("utf-8", "replace")
        if self.authenticate is not None:
            self.envelope.sandbox = self.authenticate(
                self.envelope.client, name, password.decode("utf-8", "replace"))
            if self.envelope.sandbox is None:
                raise Reply(535, "5.7.8 Authentication credentials invalid: the password "
                            "must be the sandbox's token")
        self.envelope.user = name or None
        self.envelope.authenticated = True
        await self.reply(235, "2.7.0 Authentication successful")

    async def _ask(self, challenge: str) -> str:
        await self.reply(334, challenge)
        answer = (await self.reader.readline()).decode("ascii", "replace").strip()
        if answer == "*":
            raise Reply(501, "5.7.0 Authentication aborted")
        return answer

    async def _secret(self, value: str) -> bytes:
        """Decode a base64 AUTH response (the caller keeps at most the user name)."""
        try:
            return base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise Reply(501, "5.5.2 Cannot decode response") from None

    async def do_mail(self, arg: str) -> None:
        if not self.greeted:
            raise Reply(503, "5.5.1 Error: send HELO/EHLO first")
        if self.envelope.mail_from:
            raise Reply(503, "5.5.1 Error: nested MAIL command")
        m = _PATH.match(arg)
        if m is None or m.group("verb").upper() != "FROM":
            raise Reply(501, "5.5.4 Syntax: MAIL FROM:<address>")
        size = re.search(r"\bSIZE=(\d+)", m.group("params"), re.IGNORECASE)
        if size and int(size.group(1)) > MAX_SIZE:
            raise Reply(552, "5.3.4 Message size exceeds fixed limit")
        if self.authenticate is not None and self.envelope.sandbox is None:
            self.envelope.sandbox = self.authenticate(self.envelope.client, None, "")
            if self.envelope.sandbox is None:
                raise Reply(530, "5.7.0 Authentication required: AUTH with the sandbox id "
                            "and its token")
        self.envelope.mail_from = m.group("addr") or "<>"
        await self.reply(250, "2.1.0 Ok")

    async def do_rcpt(self, arg: str) -> None:
        if not self.envelope.mail_from:
            raise Reply(503, "5.5.1 Error: need MAIL command")
        m = _PATH.match(arg)
        if m is None or m.group("verb").upper() != "TO" or not m.group("addr"):
            raise Reply(501, "5.5.4 Syntax: RCPT TO:<address>")
        if len(self.envelope.rcpt_to) >= MAX_RECIPIENTS:
            raise Reply(452, "4.5.3 Error: too many recipients")
        self.envelope.rcpt_to.append(m.group("addr"))
        await self.reply(250, "2.1.5 Ok")

    async def do_data(self, arg: str) -> None:
        if not self.envelope.rcpt_to:
            raise Reply(503, "5.5.1 Error: need RCPT command")
        await self.reply(354, "End data with <CR><LF>.<CR><LF>")
        chunks: list[bytes] = []
        size = 0
        while True:
            try:
                line = await asyncio.wait_for(self.reader.readline(), IDLE_SECONDS)
            except ValueError:  # a line over LINE_LIMIT: dropped; the message is refused
                size = MAX_SIZE + 1
                continue
            if not line:
                raise ConnectionResetError("client went away during DATA")
            if line in (b".\r\n", b".\n"):
                break
            if line.startswith(b"."):
                line = line[1:]  # RFC 5321 4.5.2: the client doubled a leading dot
            size += len(line)
            if size <= MAX_SIZE:
                chunks.append(line)
        if size > MAX_SIZE:
            self._reset()
            raise Reply(552, "5.3.4 Error: message too big or a line too long")
        self.envelope.data = b"".join(chunks)
        try:
            queue_id = await self.deliver(self.envelope)
        except Exception:
            raise Reply(451, "4.3.0 Error: message not kept, try again later") from None
        finally:
            self._reset()
        await self.reply(250, f"2.0.0 Ok: queued as {queue_id}")

    async def do_rset(self, arg: str) -> None:
        self._reset()
        await self.reply(250, "2.0.0 Ok")

    async def do_noop(self, arg: str) -> None:
        await self.reply(250, "2.0.0 Ok")

    async def do_vrfy(self, arg: str) -> None:
        await self.reply(252, "2.0.0 Cannot VRFY user, but will accept message")

    async def do_help(self, arg: str) -> None:
        await self.reply(214, "2.0.0 Commands: EHLO HELO STARTTLS AUTH MAIL RCPT DATA RSET "
                         "NOOP VRFY QUIT")
