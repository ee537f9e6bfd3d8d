"""Run a real guard proxy in a background thread: what ``guard jail``, tests, benchmarks
and agent harnesses embed.

>>> with RunningGuard(Options(listen_port=0, confdir=tmp)) as g:   # doctest: +SKIP
...     requests.get("https://api.stripe.com/v1/customers/cus_x", proxies=g.proxies,
...                  verify=g.ca)
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from guard.options import Options
from guard.proxy.addons import EgressGate, SandboxIdentity
from guard.proxy.master import Guard, GuardMaster, build, start
from guard.sandbox import Registry
from guard.world.store import WorldStore


class RunningGuard:
    """guard on an ephemeral port in its own thread and event loop."""

    def __init__(self, cfg: Options, guard: Guard | None = None) -> None:
        self.cfg = cfg
        self.guard = guard or build(cfg)
        self.master: GuardMaster | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._main, name="guard", daemon=True)
        self._error: BaseException | None = None
        self.port = 0

    def _main(self) -> None:
        async def main() -> None:
            self._loop = asyncio.get_running_loop()

            def ready(m: GuardMaster) -> None:
                self.port = m.listen_addrs()[0][1]
                self._ready.set()

            self.master = start(self.guard, ready)
            await self.master.run()

        try:
            asyncio.run(main())
        except BaseException as e:  # surfaced by __enter__
            self._error = e
            self._ready.set()

    def __enter__(self) -> RunningGuard:
        self._thread.start()
        if not self._ready.wait(30) or self._error is not None:
            raise RuntimeError(f"guard did not start: {self._error!r}")
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def stop(self) -> None:
        if self.master is not None and self._loop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self.master.shutdown)
        self._thread.join(15)
        self.guard.audit.close()
        if self.guard.admin is not None:
            self.guard.admin.close()  # its socket, even if guard never ran

    def reload(self, why: str = "test") -> bool:
        """Reload the rules now, as SIGHUP does; True when the new rules were taken."""
        assert self.master is not None and self._loop is not None
        future = asyncio.run_coroutine_threadsafe(self.master.reloader.reload(why), self._loop)
        return future.result(60)

    # what tests and harnesses look at

    @property
    def egress(self) -> EgressGate:
        """The egress gate: ``upstream_attempts``, and ``resolve`` (a seam for tests)."""
        return self.guard.egress

    @property
    def identity(self) -> SandboxIdentity:
        return self.guard.identity

    @property
    def upstream_attempts(self) -> list[tuple[str, int, bool]]:
        """Every upstream connection guard was asked to open: (host, port, permitted)."""
        return self.guard.egress.upstream_attempts

    @property
    def worlds(self) -> WorldStore:
        return self.guard.worlds

    @property
    def registry(self) -> Registry:
        """The sandboxes created through the control plane (and their tokens)."""
        return self.guard.ctx.registry

    @property
    def admin_url(self) -> str:
        """The admin API (``admin_listen=("127.0.0.1", 0)`` in the config picks a port)."""
        assert self.guard.admin is not None, "guard runs without --admin-listen"
        return self.guard.admin.url

    @property
    def admin_token(self) -> str:
        assert self.guard.admin is not None, "guard runs without --admin-listen"
        return self.guard.admin.token

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def proxies(self) -> dict[str, str]:
        return {"http": self.url, "https": self.url}

    @property
    def smtp_port(self) -> int | None:
        """The SMTP sink's port (``smtp_port=0`` in the options picks a free one)."""
        return self.master.smtp.port if self.master and self.master.smtp else None

    @property
    def smtps_port(self) -> int | None:
        return self.master.smtp.tls_port if self.master and self.master.smtp else None

    @property
    def ca(self) -> str:
        return str(self.cfg.ca)
