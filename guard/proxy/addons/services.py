"""guard's services beside the proxy, as addons with ``running``/``done``: the rule
reloader, the sandbox DNS stub and the SMTP sink. A service that cannot start keeps its
error in ``failure``; the master raises it after start-up, which stops guard."""

from __future__ import annotations

import asyncio

from guard import pipeline
from guard.net import dns
from guard.options import Options
from guard.reload import Reloader
from guard.smtp import SmtpSink
from guard.smtp.sink import WriteEvent


class Reload:
    """Polls the rule files and templates (``--reload``); SIGHUP reloads either way."""

    def __init__(self, reloader: Reloader) -> None:
        self.reloader = reloader
        self.failure: BaseException | None = None

    def running(self) -> None:
        self.reloader.start()

    def done(self) -> None:
        self.reloader.stop()


class DnsStub:
    """Answers every DNS name with one address (``--dns-listen``, ``--dns-answer``)."""

    def __init__(self, host: str, port: int, answer: str) -> None:
        self.host, self.port, self.answer = host, port, answer
        self.addr: tuple[str, int] | None = None
        self.failure: BaseException | None = None
        self._transport: asyncio.DatagramTransport | None = None

    async def running(self) -> None:
        try:
            self._transport = await dns.serve(self.host, self.port, self.answer)
        except Exception as e:  # port taken: the master stops guard
            self.failure = e
            return
        bound = self._transport.get_extra_info("sockname")
        self.addr = (str(bound[0]), int(bound[1]))

    def done(self) -> None:
        if self._transport is not None:
            self._transport.close()


class SmtpSinkService:
    """The SMTP sink (``--smtp-port``, ``--smtps-port``) in the proxy's event loop."""

    def __init__(self, options: Options, ctx: pipeline.Context,
                 write_event: WriteEvent) -> None:
        self.sink = SmtpSink(options, ctx, write_event)
        self.failure: BaseException | None = None
        self.started = False

    async def running(self) -> None:
        # After configure: the CA the sink signs its certificates with exists by now.
        try:
            await self.sink.start()
        except Exception as e:  # port taken, unreadable CA: the master stops guard
            self.failure = e
            return
        self.started = True

    async def done(self) -> None:
        await self.sink.close()
