"""Run a query in the pool while watching its asker's socket: a closed connection cancels it.

``BaseHTTPRequestHandler`` would notice a gone client only when it writes the answer, after the
query has used its whole time and memory budget. The request has been read in full, so a
readable socket that yields no bytes means the peer closed it.
"""

from __future__ import annotations

import contextlib
import select
import socket
from collections.abc import Callable
from concurrent.futures import Executor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import TypeVar

from sinks.errors import SinkError

T = TypeVar("T")
POLL_S = 0.1


def peer_gone(sock: socket.socket) -> bool:
    try:
        readable, _, _ = select.select([sock], [], [], 0)
        return bool(readable) and sock.recv(1, socket.MSG_PEEK) == b""
    except OSError:
        return True


def run_watched(
    executor: Executor, work: Callable[[], T], sock: socket.socket, gone: Callable[[], None]
) -> T | None:
    """``work()``'s result, or None after calling ``gone()`` when the peer closed ``sock``."""
    future = executor.submit(work)
    while True:
        try:
            return future.result(timeout=POLL_S)
        except FutureTimeout:
            if peer_gone(sock):
                gone()
                with contextlib.suppress(SinkError):
                    future.result()  # the killed query ends; nobody is left to answer
                return None
