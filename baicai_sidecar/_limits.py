"""The sidecar's connection limits: what one local program can take from the others, and the console line when hit.

Any program on the machine can open connections to the sidecar, token or not. Measured before these limits (issue
14): 1,100 silent connections at the usual 1,024-file limit locked every app out with nothing on the console; four
64 MB request heads took the process from 109 to 461 MB. uvicorn alone does not prevent that: its keep-alive timer
starts only after a first response (a connection that never sends a byte stays forever), ``limit_concurrency`` only
answers requests that arrive (silent connections still hold their file descriptors) and would refuse the real app
too, and httptools — the parser uvicorn picks when it is installed — buffers a header of any size.

So the HTTP protocol here is uvicorn's httptools protocol plus, per connection:

* **head timeout** — the request line and headers must arrive within ``head_timeout`` seconds of the connection
  (or of the previous answer on a kept-alive connection); otherwise it is closed;
* **head size** — more than ``max_head_bytes`` before the blank line ends the head: ``431`` and close, before the
  rest is read;
* **connection cap** — beyond ``max_connections`` the oldest connection that is *idle* (no request yet, or kept
  alive between requests) is closed to make room, so a flood of silent connections never keeps an app out; only
  when every connection is busy with a request does the new one get a clear ``503`` with ``Retry-After``;
* idle keep-alive is uvicorn's ``timeout_keep_alive`` (``keepalive_timeout``).

Each limit prints one console line when hit (at most one per kind every 10 s, with a count), never a key.
Large JSON bodies are parsed and counted off the event loop (``offload_bytes``; see ``_guard`` and the SDK's
async transport), so one app's 18 MB request does not stall another's ``GET /v1/models``.

Without httptools (it comes with the ``[sidecar]`` extra) the server falls back to uvicorn's h11 protocol with
h11's own head-size limit; the head timeout and the connection cap then do not apply, and the console says so.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import OrderedDict
from typing import Any

from baicai_sdk.integration import Text

from ._config import DEFAULT_LIMITS, ServerLimits

__all__ = ["ServerLimits", "DEFAULT_LIMITS", "uvicorn_options", "raise_fd_limit"]

log = logging.getLogger("baicai.sidecar")


ACCEPT_BURST = 128
"""Connections accepted per event-loop turn (and the listen backlog)."""

_NOTE_EVERY = 10.0
_notes: dict[str, tuple[float, int]] = {}


def note(kind: str, message: Text) -> None:
    """One console line per kind of limit hit, at most every 10 s (a flood must not flood the console)."""
    now = time.monotonic()
    last, count = _notes.get(kind, (0.0, 0))
    if now - last < _NOTE_EVERY:
        _notes[kind] = (last, count + 1)
        return
    _notes[kind] = (now, 0)
    if count:
        message += Text(f"（上次提示以来另有 {count} 次）", f" (+{count} more since the last note)")
    log.warning("%s", message)


def _raw_answer(status: int, reason: bytes, zh: str, en: str, code: str, extra: bytes = b"") -> bytes:
    from baicai_sdk.integration import error_body  # the one error body: the user's language, as every other answer

    body = json.dumps(error_body(zh, en, type="baicai_sidecar_limit", code=code), ensure_ascii=False).encode("utf-8")
    return (b"HTTP/1.1 %d %s\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: %d\r\n"
            b"connection: close\r\n%s\r\n" % (status, reason, len(body), extra)) + body


def guarded_protocol(limits: ServerLimits) -> type[asyncio.Protocol] | None:
    """uvicorn's httptools protocol with the limits above, or None when httptools is not installed."""
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    except ImportError:
        return None

    class GuardedHttpToolsProtocol(HttpToolsProtocol):
        _limits = limits

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._head_bytes = 0
            self._in_head = True
            self._tail = b""
            self._head_timer: asyncio.TimerHandle | None = None
            self._idle_since = self.loop.time()
            self._idle = idle = self._idle_set()
            if len(self.connections) > self._limits.max_connections and not self._evict_idle(idle):
                open_, cap = len(self.connections) - 1, self._limits.max_connections
                note("connections", Text(f"已拒绝一个连接：已有 {open_} 个连接且都在处理请求（上限 {cap}，--max-connections）",
                                         f"refused a connection: {open_} open, all busy (limit {cap}, --max-connections)"))
                transport.write(_raw_answer(
                    503, b"Service Unavailable",
                    f"本地代理同时处理的连接已达上限（{self._limits.max_connections}），请稍后重试",
                    f"the sidecar is at its connection limit ({self._limits.max_connections}); retry shortly",
                    "too_many_connections", b"retry-after: 1\r\n"))
                transport.close()
                return
            idle[self] = None
            self._arm_head_timer(self._limits.head_timeout)

        # -- the connection cap ------------------------------------------------------------------------------
        def _idle_set(self) -> OrderedDict[Any, None]:
            """Connections with no request in progress, oldest first (shared by the server's connections)."""
            state = self.server_state
            idle: OrderedDict[Any, None] | None = getattr(state, "baicai_idle", None)
            if idle is None:
                idle = OrderedDict()
                state.baicai_idle = idle  # type: ignore[attr-defined]
            return idle

        def _evict_idle(self, idle: OrderedDict[Any, None]) -> bool:
            while idle:
                oldest, _ = idle.popitem(last=False)
                if oldest is self or oldest.transport is None or oldest.transport.is_closing():
                    continue
                open_, cap = len(self.connections) - 1, self._limits.max_connections
                note("evict", Text(f"已关闭一个空闲连接腾出位置：已有 {open_} 个连接（上限 {cap}，--max-connections）",
                                   f"closed an idle connection to make room: {open_} open (limit {cap}, --max-connections)"))
                oldest.transport.close()
                return True
            return False

        # -- the head: time and size -------------------------------------------------------------------------
        def _arm_head_timer(self, delay: float) -> None:
            self._cancel_head_timer()
            self._head_timer = self.loop.call_later(delay, self._head_timed_out)

        def _cancel_head_timer(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None

        def _head_timed_out(self) -> None:
            self._head_timer = None
            if self.transport is None or self.transport.is_closing() or not self._in_head:
                return
            wait = f"{self._limits.head_timeout:g}"
            if self._head_bytes:
                note("head_timeout", Text(f"已关闭一个连接：请求头 {wait} 秒内未收完（已收 {self._head_bytes} 字节；--head-timeout）",
                                          f"closed a connection whose request head did not arrive within {wait} s "
                                          f"({self._head_bytes} bytes; --head-timeout)"))
            else:
                note("silent", Text(f"已关闭一个 {wait} 秒未发请求的连接（--head-timeout）",
                                    f"closed a silent connection after {wait} s (no request; --head-timeout)"))
            self.transport.close()

        def data_received(self, data: bytes) -> None:
            if not self._in_head:
                super().data_received(data)
                return
            end = data.find(b"\r\n\r\n")
            if end >= 0:
                size = self._head_bytes + end + 4
            elif self._tail and (split := (self._tail + data[:3]).find(b"\r\n\r\n")) >= 0:
                size = self._head_bytes + split + 4 - len(self._tail)  # the blank line spans two reads
            else:
                size = self._head_bytes + len(data)
            if size > self._limits.max_head_bytes:
                self._refuse_head(size)
                return
            self._head_bytes = size
            self._tail = data[-3:] if len(data) >= 3 else (self._tail + data)[-3:]
            super().data_received(data)
            if self._in_head and self._head_timer is None and not self.transport.is_closing():
                # the first bytes of a head after a kept-alive wait (uvicorn's keep-alive timer just stopped):
                # the rest of the head has what is left of head_timeout, counted from the previous answer
                self._arm_head_timer(max(0.0, self._idle_since + self._limits.head_timeout - self.loop.time()))

        def _refuse_head(self, size: int) -> None:
            kb = self._limits.max_head_bytes // 1024
            note("head_size", Text(f"已拒绝超过 {kb} KB 的请求头（已收 {size} 字节；--max-header-kb）",
                                   f"refused a request head over {kb} KB ({size} bytes so far; --max-header-kb)"))
            self._in_head = False
            self._cancel_head_timer()
            self._idle.pop(self, None)
            self.transport.write(_raw_answer(
                431, b"Request Header Fields Too Large",
                f"请求头超过 {self._limits.max_head_bytes // 1024} KB 上限",
                f"the request headers exceed the {self._limits.max_head_bytes // 1024} KB limit",
                "request_header_too_large"))
            self.transport.close()

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._idle.pop(self, None)

        def on_headers_complete(self) -> None:
            self._in_head = False
            self._cancel_head_timer()
            super().on_headers_complete()
            cycle = self.cycle
            if cycle is not None and cycle.scope["method"] != "HEAD":  # a HEAD answer has no body write
                cycle.transport = _HeadWithBody(self.transport, self.loop)  # type: ignore[assignment]  # as a Transport

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._maybe_idle()

        def on_message_complete(self) -> None:
            super().on_message_complete()
            cycle = self.cycle
            if cycle is not None and cycle.response_complete and cycle.more_body:
                cycle.more_body = False  # uvicorn leaves it set for a request it answered before its body ended
                self._maybe_idle()

        def _maybe_idle(self) -> None:
            """Between requests: counted idle for the cap, the next head measured and timed — only once the last
            request is answered AND its body has all arrived. Before that, bytes still coming are that body (e.g.
            after a 413 for a declared size), not a head; and when uvicorn has just started a pipelined request,
            the connection is busy (else the head timeout would cut it as silent, and the cap could close it)."""
            cycle = self.cycle
            if self.transport is None or self.transport.is_closing():
                return
            if cycle is not None and (not cycle.response_complete or cycle.more_body):
                return
            self._in_head, self._head_bytes, self._tail = True, 0, b""
            self._idle_since = self.loop.time()
            self._idle[self] = None
            if self._limits.head_timeout < self._limits.keepalive_timeout:
                self._arm_head_timer(self._limits.head_timeout)
            # else uvicorn's keep-alive timer closes a connection that stays silent; the head timer starts only
            # if a head begins without ending in the same read (data_received): one timer per request, not two

        def connection_lost(self, exc: Exception | None) -> None:
            self._cancel_head_timer()
            self._idle.pop(self, None)
            super().connection_lost(exc)

    return GuardedHttpToolsProtocol


def uvicorn_options(limits: ServerLimits) -> dict[str, Any]:
    """The uvicorn settings that carry ``limits``."""
    protocol = guarded_protocol(limits)
    # backlog: asyncio accepts up to this many connections in one go, before any of them runs connection_made
    # (where idle ones are closed to make room): uvicorn's 2,048 would run a 1,024-file process out of descriptors.
    options: dict[str, Any] = {"timeout_keep_alive": limits.keepalive_timeout,
                               "h11_max_incomplete_event_size": limits.max_head_bytes,
                               "backlog": ACCEPT_BURST}
    if protocol is not None:
        options["http"] = protocol
    else:
        options["http"] = "h11"
        log.warning("%s", Text('未安装 httptools：本地代理的请求头超时和连接数上限未生效（pip install "baicai[sidecar]"）',
                               "httptools is not installed: the sidecar's head timeout and connection cap are off "
                               '(pip install "baicai[sidecar]")'))
    return options


class _HeadWithBody:
    """The transport as one request's ASGI cycle sees it: the head of an answer with a ``content-length`` is held
    until the body's first write and sent with it, in one ``send`` (uvicorn writes the head at
    ``http.response.start`` and the body at ``http.response.body``: two system calls, and two segments the app
    reads, for every non-streamed answer). uvicorn writes the body of every answer but a HEAD one, an empty one
    too; a HEAD request's cycle gets the transport itself. A streamed (chunked) answer's head waits only for the
    rest of the event loop's turn: it leaves with a first chunk written in that turn, else alone. A held head also
    goes out when the connection is closed (an app that failed after its ``http.response.start``)."""

    __slots__ = ("_transport", "_loop", "_held", "_before_head")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport, self._loop = transport, loop
        self._held: bytes | None = None
        self._before_head = True  # only the cycle's first write (after any 100 Continue) is a head

    def write(self, data: bytes) -> None:
        held = self._held
        if held is not None:
            self._held = None
            self._transport.write(held + data)
        elif self._before_head and data[:9] == b"HTTP/1.1 " and data[9:12] != b"100":
            self._before_head = False
            self._held = data
            if b"\r\ncontent-length: " not in data:
                self._loop.call_soon(self.flush)  # a stream's head: with a first chunk written in this same turn
        else:
            self._transport.write(data)

    def flush(self) -> None:
        held, self._held = self._held, None
        if held is not None and not self._transport.is_closing():
            self._transport.write(held)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


def raise_fd_limit(wanted: int = 8192) -> tuple[int, int]:
    """Raise this process's open-file limit toward ``wanted`` (never above the hard limit): the usual 1,024 is less
    than a connection cap plus the upstream connections, the ledger and the logs. Returns (soft, hard)."""
    try:
        import resource
    except ImportError:  # Windows: no such limit to raise
        return (-1, -1)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return soft, hard
