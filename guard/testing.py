"""Run a real guard proxy in a background thread: for tests, benchmarks and agent harnesses.

>>> with RunningGuard(RunConfig(listen_port=0, confdir=tmp)) as g:   # doctest: +SKIP
...     requests.get("https://api.stripe.com/v1/customers/cus_x", proxies=g.proxies,
...                  verify=g.ca)
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

from guard.addon import GuardAddon
from guard.proxy import GuardMaster, RunConfig, build, start


class RunningGuard:
    """guard on an ephemeral port in its own thread and event loop."""

    def __init__(self, cfg: RunConfig, addon: GuardAddon | None = None) -> None:
        self.cfg = cfg
        self.addon = addon or build(cfg)
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

            self.master = start(self.cfg, self.addon, ready)
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
        self.addon.audit.close()

    def reload(self, why: str = "test") -> bool:
        """Reload the rules now, as SIGHUP does; True when the new rules were taken."""
        assert self.master is not None and self.master.reloader is not None and self._loop
        future = asyncio.run_coroutine_threadsafe(self.master.reloader.reload(why), self._loop)
        return future.result(60)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def proxies(self) -> dict[str, str]:
        return {"http": self.url, "https": self.url}

    @property
    def smtp_port(self) -> int | None:
        """The SMTP sink's port (``smtp_port=0`` in the config picks a free one)."""
        return self.master.smtp.port if self.master and self.master.smtp else None

    @property
    def smtps_port(self) -> int | None:
        return self.master.smtp.tls_port if self.master and self.master.smtp else None

    @property
    def ca(self) -> str:
        return str(Path(self.cfg.confdir) / "mitmproxy-ca-cert.pem")
