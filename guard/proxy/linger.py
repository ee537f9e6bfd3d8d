"""Closing a connection whose refused request body may still be arriving.

When guard answers 413 while the client is still sending the body, closing the socket
with that body unread in the kernel's receive buffer makes the kernel reset the
connection (RST): a client that sends its whole body before it reads (most HTTP/1
clients) then gets ``ECONNRESET`` instead of the answer. So the close of such a
connection lingers: the answer is flushed and followed by a FIN, and what the client
still sends is read and dropped (up to :data:`LINGER_BYTES`, for at most the header
timeout) before the socket is closed.

:class:`LingeringWriter` stands in for the connection's ``asyncio.StreamWriter`` in
mitmproxy's transport table, so that every close of it, whichever task makes it,
lingers.
"""

from __future__ import annotations

import asyncio
from typing import Any

LINGER_BYTES = 1024**3  # read at most this much of a refused body before closing


class LingeringWriter:
    """A client's writer whose :meth:`close` reads (and drops) what the client still
    sends first. Everything else is the wrapped writer's. ``tasks`` keeps the lingering
    task referenced until it ends.

    >>> # io.writer = LingeringWriter(reader, io.writer, 30.0, tasks)
    >>> # ... io.writer.close()  # returns at once; the socket closes after the linger
    """

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 timeout: float, tasks: set[asyncio.Future[None]]) -> None:
        self.reader = reader
        self.writer = writer
        self.timeout = timeout
        self._tasks = tasks
        self._closing = False

    def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        task = asyncio.ensure_future(linger(self.reader, self.writer, self.timeout))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def is_closing(self) -> bool:
        return self._closing or self.writer.is_closing()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.writer, name)


async def linger(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 timeout: float) -> None:
    """Half-close ``writer`` (after what is buffered for it), read and drop from ``reader``
    until the client's end of stream, :data:`LINGER_BYTES` or ``timeout``, then close."""
    try:
        if writer.can_write_eof():
            writer.write_eof()
        async with asyncio.timeout(timeout):
            dropped = 0
            while dropped < LINGER_BYTES:
                data = await reader.read(65536)
                if not data:
                    break
                dropped += len(data)
    except (TimeoutError, OSError):
        pass
    finally:
        writer.close()
