"""uvicorn's httptools protocol with the limits it lacks: a cap on the size of a request's headers
(431), and a deadline for receiving them (408) that also closes a connection that never sends a
request. uvicorn arms its own keep-alive timeout only between requests; this arms one from the
moment a connection opens or a request starts until its headers are in. The body has its own
deadline, in the front door (guard.py).
"""

from __future__ import annotations

import asyncio
import json

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

STATUS_LINES = {408: b"HTTP/1.1 408 Request Timeout\r\n", 431: b"HTTP/1.1 431 Request Header Fields Too Large\r\n"}


def protocol_class(max_header_bytes: int, header_timeout_s: float) -> type:
    """A protocol class for uvicorn.Config(http=...) with these limits."""

    class LimitedHttpToolsProtocol(HttpToolsProtocol):
        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._header_bytes = 0
            self._refused = False
            self._header_timer: asyncio.TimerHandle | None = None
            self._arm()

        # -- the header deadline ----------------------------------------------------------
        def _arm(self) -> None:
            self._disarm()
            self._header_timer = self.loop.call_later(header_timeout_s, self._headers_too_slow)

        def _disarm(self) -> None:
            if getattr(self, "_header_timer", None) is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _headers_too_slow(self) -> None:
            self._header_timer = None
            if self.cycle is not None and not self.cycle.response_complete:
                return  # a request is being answered; its body has the front door's deadline
            if self._header_bytes == 0 and not getattr(self, "url", b""):
                self.transport.close()  # an idle connection: nothing to answer
            else:
                self._refuse(408, f"the request's headers did not arrive within {header_timeout_s:g} s")

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._header_bytes = 0
            self._arm()

        def on_headers_complete(self) -> None:
            self._disarm()
            super().on_headers_complete()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._arm()  # the next request's headers, or an idle keep-alive connection, get a deadline too

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        # -- the header size cap ----------------------------------------------------------
        def on_url(self, url: bytes) -> None:
            self._count(len(url))
            super().on_url(url)

        def on_header(self, name: bytes, value: bytes) -> None:
            self._count(len(name) + len(value) + 4)
            super().on_header(name, value)

        def _count(self, n: int) -> None:
            self._header_bytes += n
            if self._header_bytes > max_header_bytes:
                self._refused = True
                raise ValueError("headers too large")  # stops the parser; data_received answers

        def data_received(self, data: bytes) -> None:
            if self._refused:
                return
            try:
                super().data_received(data)
            except Exception:
                if not self._refused:
                    raise
            if self._refused and not self.transport.is_closing():
                self._refuse(431, f"the request's headers exceed the limit of {max_header_bytes} bytes")

        def send_400_response(self, msg: str) -> None:
            if self._refused:  # the parser stopped because of the cap: answer that instead
                self._refuse(431, f"the request's headers exceed the limit of {max_header_bytes} bytes")
            else:
                super().send_400_response(msg)

        def _refuse(self, status: int, message: str) -> None:
            self._refused = True
            body = json.dumps({"error": message}).encode()
            head = STATUS_LINES[status] + (
                b"content-type: application/json\r\ncontent-length: %d\r\nconnection: close\r\n\r\n" % len(body)
            )
            self.transport.write(head + body)
            self.transport.close()

    return LimitedHttpToolsProtocol
