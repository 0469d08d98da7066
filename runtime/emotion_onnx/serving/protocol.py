"""uvicorn's httptools protocol with the limits it lacks:

- a cap on the size of a request's headers (431), and a deadline for receiving them (408) that
  also closes a connection that never sends a request. uvicorn arms its own keep-alive timeout
  only between requests; this arms one from the moment a connection opens or a request starts
  until its headers are in. The body has its own deadline, in the front door (guard.py);
- a deadline for a client to read its answer: a response the client does not take within
  `send_timeout_s` (the write buffer stays full), or that still sits unsent in the kernel when an
  idle connection is closed, ends the connection with a reset, which frees its buffers at once
  (a plain close would keep them while the kernel retries);
- every refusal the HTTP parser makes (a malformed request, conflicting Content-Length and
  Transfer-Encoding, a bad chunk size) answered in JSON, as every other refusal is;
- pipelined requests still queued when the client closes the connection are marked disconnected,
  so their answers are dropped quietly instead of failing on the closed transport.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import struct
import sys

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

STATUS_LINES = {
    400: b"HTTP/1.1 400 Bad Request\r\n",
    408: b"HTTP/1.1 408 Request Timeout\r\n",
    431: b"HTTP/1.1 431 Request Header Fields Too Large\r\n",
}


def unsent_bytes(transport: asyncio.Transport) -> int:
    """Bytes written but not yet taken by the peer: the transport's buffer and, on Linux, the
    kernel's send queue (SIOCOUTQ)."""
    pending = transport.get_write_buffer_size()
    sock = transport.get_extra_info("socket")
    if sock is not None and sys.platform.startswith("linux"):
        import fcntl
        import termios

        with contextlib.suppress(OSError, ValueError):
            raw = fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0\0\0\0")
            pending += struct.unpack("i", raw)[0]
    return pending


def reset(transport: asyncio.Transport) -> None:
    """End a connection with a reset (SO_LINGER 0): the kernel drops what it still holds for the
    peer at once, where a close would keep it queued while it retries."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError, ValueError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


def end_connection(transport: asyncio.Transport) -> None:
    """Close a connection; with an answer still unread, reset it, so its buffers are freed now."""
    if transport.is_closing():
        return
    if unsent_bytes(transport) > 0:
        reset(transport)
    else:
        transport.close()


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    """HttpToolsProtocol with the limits above; `protocol_class` sets them for a server."""

    max_header_bytes = 64 * 1024
    header_timeout_s = 10.0
    send_timeout_s = 30.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._header_bytes = 0
        self._reading_headers = False  # between a request's first byte and the end of its headers
        self._refused = False
        self._header_timer: asyncio.TimerHandle | None = None
        self._arm()

    # -- the header deadline ----------------------------------------------------------
    def _arm(self) -> None:
        self._disarm()
        self._header_timer = self.loop.call_later(self.header_timeout_s, self._headers_too_slow)

    def _disarm(self) -> None:
        if getattr(self, "_header_timer", None) is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if self.cycle is not None and not self.cycle.response_complete:
            return  # a request is being answered; its body has the front door's deadline
        if not self._reading_headers:
            end_connection(self.transport)  # an idle connection: nothing to answer
        else:
            self._refuse(408, f"the request's headers did not arrive within {self.header_timeout_s:g} s")

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._header_bytes = 0
        self._reading_headers = True
        self._arm()

    def on_headers_complete(self) -> None:
        self._disarm()
        self._reading_headers = False
        super().on_headers_complete()
        # every request still being answered or queued (pipelined) on this connection
        self._cycles = [c for c in getattr(self, "_cycles", ()) if not c.response_complete] + [self.cycle]

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._arm()  # the next request's headers, or an idle keep-alive connection, get a deadline too

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        self._stop_send_timer()
        for cycle in getattr(self, "_cycles", ()):  # answers running or queued have nobody to go to
            if not cycle.response_complete:
                cycle.disconnected = True
        super().connection_lost(exc)

    def timeout_keep_alive_handler(self) -> None:
        end_connection(self.transport)

    # -- the send deadline --------------------------------------------------------------
    def pause_writing(self) -> None:
        super().pause_writing()
        self._stop_send_timer()
        self._send_timer = self.loop.call_later(self.send_timeout_s, self._reader_too_slow)

    def resume_writing(self) -> None:
        self._stop_send_timer()
        super().resume_writing()

    def _stop_send_timer(self) -> None:
        if getattr(self, "_send_timer", None) is not None:
            self._send_timer.cancel()
            self._send_timer = None

    def _reader_too_slow(self) -> None:
        self._send_timer = None
        if not self.transport.is_closing():
            reset(self.transport)

    # -- the header size cap ----------------------------------------------------------
    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value) + 4)
        super().on_header(name, value)

    def _count(self, n: int) -> None:
        self._header_bytes += n
        if self._header_bytes > self.max_header_bytes:
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
            self._refuse(431, f"the request's headers exceed the limit of {self.max_header_bytes} bytes")

    def send_400_response(self, msg: str) -> None:
        if self._refused:  # the parser stopped because of the cap: answer that instead
            self._refuse(431, f"the request's headers exceed the limit of {self.max_header_bytes} bytes")
        else:
            self._refuse(400, f"the request is not valid HTTP/1.1 ({msg.rstrip('.')})")

    def _refuse(self, status: int, message: str) -> None:
        self._refused = True
        body = json.dumps({"error": message}).encode()
        head = STATUS_LINES[status] + (
            b"content-type: application/json\r\ncontent-length: %d\r\nconnection: close\r\n\r\n" % len(body)
        )
        self.transport.write(head + body)
        self.transport.close()


def protocol_class(max_header_bytes: int, header_timeout_s: float, send_timeout_s: float = 30.0) -> type:
    """A protocol class for uvicorn.Config(http=...) with these limits."""
    limits = {"max_header_bytes": max_header_bytes, "header_timeout_s": header_timeout_s,
              "send_timeout_s": send_timeout_s}  # fmt: skip
    return type("LimitedHttpToolsProtocol", (LimitedHttpToolsProtocol,), limits)
