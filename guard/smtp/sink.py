"""The SMTP sink: accepts every message into the sending sandbox's outbox, relays nothing.

``guard run --smtp-port 2525`` listens for SMTP (STARTTLS offered) and ``--smtps-port
4650`` for SMTP over implicit TLS (what clients of port 465 expect), on the proxy's listen
host, in the proxy's event loop. The sandbox is the client's address (or the sandbox
bound to it); with ``--sandbox-from proxy-user`` or ``header`` it must be proven with
``AUTH`` (user the sandbox id, password its token), as proxy credentials are, and MAIL
without it is refused with 530 (see :mod:`guard.sandbox.identity`). Each accepted
message becomes an outbox record (provider ``smtp``) and an audit event (method ``SMTP``,
rule ``guard.smtp.sink``, action ``simulate``), written in one world transaction: if the
audit log cannot be written, the message is refused with a temporary error and kept
nowhere.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import socket
import ssl
import struct
import time
from collections.abc import Callable
from typing import Any

from guard import outbox, pipeline
from guard.audit.event import FlowRecord
from guard.decision import Action
from guard.errors import GuardError
from guard.mail import address_of, parse_mime
from guard.options import Options, SandboxFrom
from guard.request import Request, Response
from guard.sandbox import identify
from guard.smtp.session import LINE_LIMIT, Envelope, Session
from guard.smtp.tls import CertIssuer
from guard.world import bridge
from guard.world.store import Change

log = logging.getLogger("guard")

RULE_ID = "guard.smtp.sink"
REASON = "SMTP sink: kept in the outbox, never relayed"
SO_ORIGINAL_DST = 80  # linux/netfilter_ipv4.h: where a REDIRECTed connection was going


class SinkError(GuardError):
    """A message was not kept (the session answers with a temporary error)."""


WriteEvent = Callable[[FlowRecord], object]
"""Writes one audit event (the audit recorder's ``write_event``); raises when it cannot."""


class SmtpSink:
    def __init__(self, cfg: Options, ctx: pipeline.Context, write_event: WriteEvent) -> None:
        self.cfg, self.ctx, self.write_event = cfg, ctx, write_event
        self.worlds = ctx.simulator.worlds
        self.registry = ctx.registry
        # the outbox is redacted like the audit log
        self.redact: Callable[[Any], Any] | None = ctx.simulator.options.get(
            outbox.REDACT_OPTION)
        self.hostname = socket.gethostname() or "guard"
        self._servers: list[asyncio.Server] = []
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> SmtpSink:
        """Listen; raises ``OSError`` (port taken) or the CA's read error."""
        host = self.cfg.listen_host
        issuer = CertIssuer(self.cfg.confdir, [host, self.hostname])
        if self.cfg.smtp_port is not None:
            self._servers.append(await asyncio.start_server(
                lambda r, w: self._serve(r, w, issuer, implicit=False), host,
                self.cfg.smtp_port, limit=LINE_LIMIT))
        if self.cfg.smtps_port is not None:
            self._servers.append(await asyncio.start_server(
                lambda r, w: self._serve(r, w, issuer, implicit=True), host,
                self.cfg.smtps_port, ssl=issuer.default, limit=LINE_LIMIT))
        return self

    @property
    def port(self) -> int | None:
        return self._bound(self.cfg.smtp_port, 0)

    @property
    def tls_port(self) -> int | None:
        return self._bound(self.cfg.smtps_port, 1 if self.cfg.smtp_port is not None else 0)

    def _bound(self, wanted: int | None, index: int) -> int | None:
        if wanted is None or index >= len(self._servers):
            return None
        return int(self._servers[index].sockets[0].getsockname()[1])

    async def close(self) -> None:
        for server in self._servers:
            server.close()
        for task in list(self._tasks):
            task.cancel()
        for server in self._servers:
            await server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                     issuer: CertIssuer, *, implicit: bool) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        destination = original_destination(writer)
        session = Session(reader, writer, hostname=self.hostname, tls=issuer.default,
                          implicit_tls=implicit, sni=issuer.server_name,
                          deliver=lambda env: self.deliver(env, destination),
                          authenticate=self._authenticate if self.cfg.sandbox_from
                          is not SandboxFrom.CLIENT else None)
        try:
            await session.run()
        except (ConnectionError, TimeoutError, ssl.SSLError, ValueError) as e:
            log.info("guard: SMTP session from %s ended: %s", session.envelope.client, e)
        finally:
            if task is not None:
                self._tasks.discard(task)
            writer.close()

    def _authenticate(self, client: str, user: str | None, password: str) -> str | None:
        """AUTH proves the sandbox as proxy credentials do (SANDBOX:TOKEN); in header mode
        (SMTP has no headers) the same. Without AUTH only an address binding proves it."""
        credentials = None
        if user is not None:
            credentials = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        found = identify(SandboxFrom.PROXY_USER, self.registry, client=client,
                         proxy_auth=credentials)
        return found.sandbox

    async def deliver(self, env: Envelope, destination: tuple[str, int]) -> str:
        """Keep one message through the pipeline (as one of guard's own services): the
        outbox record, then its audit event. Raises when it was not kept."""
        started, t0 = time.time(), time.perf_counter()
        host = env.server_name or destination[0]
        sandbox = env.sandbox  # proven by AUTH; else the address (or the sandbox bound to it)
        if sandbox is None:
            sandbox = identify(SandboxFrom.CLIENT, self.registry,
                               client=env.client).sandbox or "default"
        request = Request("SMTP", "smtp", host, destination[1], "/", client=env.client,
                          sandbox=sandbox, sni=env.server_name)
        service = pipeline.Service(RULE_ID, REASON,
                                   lambda req: self._keep(req, env, started, t0))
        # as a greenlet, as the proxy runs requests (guard.proxy.offload): a world a
        # request holds is waited for on the loop, Redis round trips are awaited there
        outcome = await bridge.run(lambda: pipeline.handle(request, self.ctx, service=service))
        if outcome.error is not None or outcome.response is None:
            log.error("guard: SMTP message from %s not kept: %s", env.client, outcome.error)
            raise SinkError(outcome.error or "not kept")
        return outcome.response.body.decode()

    def _keep(self, request: Request, env: Envelope, started: float, t0: float) -> Response:
        world = self.worlds.world(request.sandbox)
        mime = parse_mime(env.data)
        visible = {address_of(a).lower() for a in [*mime.to, *mime.cc]}
        hidden = [a for a in env.rcpt_to if a.lower() not in visible]

        def keep(changes: list[Change]) -> tuple[dict[str, Any], list[Change]]:
            world.clock.tick()  # a kept message is a simulated request: the clock moves
            return outbox.add(world, outbox.Message(
                "smtp", sender=mime.sender or env.mail_from, to=mime.to, cc=mime.cc,
                bcc=[*mime.bcc, *hidden], subject=mime.subject, text=mime.text,
                html=mime.html, attachments=mime.attachments,
                provider_id=mime.message_id, id_from_request=True,
                extra={"envelope_from": env.mail_from, "envelope_to": list(env.rcpt_to),
                       "helo": env.helo, "tls": env.tls, "authenticated": env.authenticated,
                       "server": f"{request.host}:{request.port}", "size": len(env.data)}),
                rule_id=RULE_ID, redact=self.redact), changes

        # The audit event is written once the change is in: a transaction can be run
        # again when another replica wrote first, an audit event must not be.
        rec, changes = world.atomically(keep)
        self.write_event(FlowRecord(
            request, RULE_ID, Action.SIMULATE, REASON, status=250, started=started,
            duration_ms=(time.perf_counter() - t0) * 1000, changes=list(changes)))
        self.worlds.flush(world)
        return Response(250, [], str(rec["id"]).encode())


def original_destination(writer: asyncio.StreamWriter) -> tuple[str, int]:
    """Where the client meant to connect: the pre-REDIRECT address on Linux (iptables
    REDIRECT keeps it in SO_ORIGINAL_DST), else the sink's own address."""
    sock = writer.get_extra_info("socket")
    local = writer.get_extra_info("sockname") or ("", 0)
    if sock is not None and sock.family == socket.AF_INET:
        try:
            raw = sock.getsockopt(socket.SOL_IP, SO_ORIGINAL_DST, 16)
            port, packed = struct.unpack_from("!2xH4s", raw)
            return socket.inet_ntoa(packed), int(port)
        except OSError:
            pass
    return str(local[0]), int(local[1])
