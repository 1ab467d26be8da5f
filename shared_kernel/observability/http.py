"""A minimal HTTP/1.1 endpoint on asyncio: GET and HEAD of a few fixed paths.

What Prometheus and the kubelet's probes need, and nothing more: one request
per connection (``Connection: close``), no request bodies, no keep-alive. It
runs on the service's own event loop, so an answer from it shows that the
loop is alive; a web framework would add a dependency and a server of its own
for three fixed routes.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from http import HTTPStatus

from shared_kernel.logging import get_logger

log = get_logger(__name__)

_READ_TIMEOUT = 5.0  # for the request line and headers
_MAX_HEADERS = 100


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes
    content_type: str = "text/plain; charset=utf-8"
    headers: tuple[tuple[str, str], ...] = ()


# A route takes the request's headers (names in lower case) and returns the response.
Route = Callable[[Mapping[str, str]], Awaitable[Response]]


class _BadRequest(Exception):
    """The request line or headers are not HTTP/1.x this endpoint serves."""


class HttpEndpoint:
    def __init__(self, host: str, port: int, routes: Mapping[str, Route]) -> None:
        self._host = host
        self._requested_port = port
        self._routes = dict(routes)
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self._host, self._requested_port)

    @property
    def port(self) -> int:
        """The bound port (the OS's choice when the requested port was 0)."""
        if self._server is None or not self._server.sockets:
            raise RuntimeError("the HTTP endpoint is not listening")
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        method = "GET"
        try:
            try:
                async with asyncio.timeout(_READ_TIMEOUT):
                    method, path, headers = await _read_request(reader)
            except (_BadRequest, TimeoutError, ValueError, asyncio.IncompleteReadError) as error:
                response = Response(HTTPStatus.BAD_REQUEST, f"bad request: {error!r}\n".encode())
            else:
                response = await self._respond(method, path, headers)
            await _write(writer, response, with_body=method != "HEAD")
        except (ConnectionError, TimeoutError):
            log.debug("health client went away")
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError, TimeoutError):
                await writer.wait_closed()

    async def _respond(self, method: str, path: str, headers: Mapping[str, str]) -> Response:
        route = self._routes.get(path)
        if route is None:
            return Response(HTTPStatus.NOT_FOUND, b"not found\n")
        if method not in ("GET", "HEAD"):
            allow = (("Allow", "GET, HEAD"),)
            return Response(HTTPStatus.METHOD_NOT_ALLOWED, b"only GET and HEAD\n", headers=allow)
        try:
            return await route(headers)
        except Exception:
            log.exception("HTTP route failed", path=path)
            return Response(HTTPStatus.INTERNAL_SERVER_ERROR, b"internal error\n")


async def _read_request(reader: asyncio.StreamReader) -> tuple[str, str, dict[str, str]]:
    """(method, path without the query, headers) of one request."""
    request_line = (await reader.readline()).decode("latin-1").rstrip("\r\n")
    parts = request_line.split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise _BadRequest(request_line[:100] or "empty request")
    method, target, _ = parts
    headers: dict[str, str] = {}
    for _ in range(_MAX_HEADERS):
        line = (await reader.readline()).decode("latin-1")
        if line in ("\r\n", "\n", ""):
            return method, target.split("?", 1)[0], headers
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    raise _BadRequest("too many headers")


async def _write(writer: asyncio.StreamWriter, response: Response, *, with_body: bool) -> None:
    status = HTTPStatus(response.status)
    head = (
        f"HTTP/1.1 {status.value} {status.phrase}\r\n"
        f"Content-Type: {response.content_type}\r\n"
        f"Content-Length: {len(response.body)}\r\n"
        "Cache-Control: no-store\r\n"
        "Connection: close\r\n" + "".join(f"{name}: {value}\r\n" for name, value in response.headers) + "\r\n"
    )
    writer.write(head.encode("latin-1") + (response.body if with_body else b""))
    await writer.drain()
