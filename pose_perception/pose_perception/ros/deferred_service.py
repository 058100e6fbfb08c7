"""Services that answer later, from another thread: rclpy (Jazzy) has no deferred-response API in Python, and its
C++ events executor does not run coroutine (async) service callbacks.

Both executors send a service's reply by calling `service.send_response(response, header)` with what the callback
returned. `DeferredService` replaces that method on its own service object: the header is kept until the handler
calls `respond(response)` (from any thread), and whichever of the two comes second sends the reply. So a callback
can hand minutes of work to a worker thread and return at once, and the executor keeps serving everything else.
"""

from __future__ import annotations

import threading
from typing import Any, Callable

Respond = Callable[[Any], None]


class DeferredService:
    """node.create_service(srv_type, name, ...) whose handler(request, response, respond) may call respond(response)
    at once or later from any thread, exactly once per request."""

    def __init__(self, node, srv_type, name: str, handler: Callable[[Any, Any, Respond], None], **kwargs):
        self._handler = handler
        self._lock = threading.Lock()
        # id(the response object the callback returned) -> _Pending; the entry keeps that object alive, so its id
        # cannot be reused while the request is open
        self._pending: dict[int, _Pending] = {}
        self.service = node.create_service(srv_type, name, self._callback, **kwargs)
        self._send = self.service.send_response  # the bound original: sends over rcl
        self.service.send_response = self._from_executor

    def _callback(self, request, response):
        entry = _Pending(response)
        with self._lock:
            self._pending[id(response)] = entry
        try:
            self._handler(request, response, lambda answer: self._respond(entry, answer))
        except BaseException:
            with self._lock:
                self._pending.pop(id(response), None)
            raise
        return response

    def _from_executor(self, response, header) -> None:
        with self._lock:
            entry = self._pending.get(id(response))
            if entry is not None:
                entry.header = header
                if entry.answer is None:
                    return  # the handler answers later
                del self._pending[id(response)]
                response = entry.answer
        self._send(response, header)

    def _respond(self, entry: "_Pending", answer) -> None:
        with self._lock:
            if entry.answer is not None:
                raise RuntimeError("respond() called twice for one request")
            entry.answer = answer
            if entry.header is None:
                return  # the executor has not handed over the header yet: _from_executor sends the answer
            del self._pending[id(entry.returned)]
            header = entry.header
        self._send(answer, header)


class _Pending:
    __slots__ = ("returned", "header", "answer")

    def __init__(self, returned) -> None:
        self.returned, self.header, self.answer = returned, None, None
