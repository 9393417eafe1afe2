"""An HTTP proxy in front of the local AWS endpoint that injects faults.

Point the worker's AWS_ENDPOINT_URL at the proxy, then choose faults per
service and operation: a throttling error, an HTTP 500, a dropped
connection, or a whole service being unavailable for a while.  Requests
without a matching fault pass through to moto unchanged.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from devstack.ports import free_port

THROTTLE = "throttle"
SERVER_ERROR = "server-error"
DROP = "drop"
KINDS = (THROTTLE, SERVER_ERROR, DROP)


@dataclass
class Fault:
    """A fault for matching requests: a kind, a count or an end time.

    ``remaining`` counts the requests still to fail (None for no limit);
    ``until`` is a time.monotonic() deadline (None for no deadline).
    """

    service: str
    operation: str | None
    kind: str
    remaining: int | None = None
    until: float | None = None

    def matches(self, service: str, operation: str, now: float) -> bool:
        if self.service != service:
            return False
        if self.operation is not None and self.operation != operation:
            return False
        if self.until is not None and now >= self.until:
            return False
        return self.remaining is None or self.remaining > 0


class FaultProxy:
    """Forward requests to ``target_port``, failing those a fault selects."""

    def __init__(self, target_port: int, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.target_port = target_port
        self.faults: list[Fault] = []
        self.counts: dict[tuple[str, str, str], int] = {}
        self._lock = threading.Lock()
        handler = type("FaultHandler", (_Handler,), {"proxy": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever,
                                         daemon=True)

    def start(self) -> "FaultProxy":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def add(self, service: str, kind: str, operation: str | None = None,
            count: int | None = None, seconds: float | None = None) -> Fault:
        """Fail ``count`` requests, or all for ``seconds``, or all."""
        if kind not in KINDS:
            raise ValueError(f"unknown fault kind {kind!r}")
        until = time.monotonic() + seconds if seconds is not None else None
        fault = Fault(service, operation, kind, count, until)
        with self._lock:
            self.faults.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self.faults.clear()

    def choose(self, service: str, operation: str) -> str | None:
        """Return the fault kind for a request, counting it, or None."""
        now = time.monotonic()
        with self._lock:
            for fault in self.faults:
                if fault.matches(service, operation, now):
                    if fault.remaining is not None:
                        fault.remaining -= 1
                    key = (service, operation, fault.kind)
                    self.counts[key] = self.counts.get(key, 0) + 1
                    return fault.kind
        return None

    def __enter__(self) -> "FaultProxy":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def identify(method: str, headers: Any, path: str,
             body: bytes) -> tuple[str, str]:
    """Return (service, operation) of an AWS request, as far as known."""
    target = headers.get("X-Amz-Target", "")
    if target.startswith("DynamoDB_"):
        return "dynamodb", target.split(".", 1)[1]
    if target.startswith("AmazonSQS."):
        return "sqs", target.split(".", 1)[1]
    authorization = headers.get("Authorization", "")
    if "/s3/aws4_request" in authorization:
        return "s3", _s3_operation(method, headers, path)
    for service in ("sqs", "dynamodb"):
        if f"/{service}/aws4_request" in authorization:
            action = parse_qs(body.decode("latin-1")).get("Action", [""])[0]
            return service, action or urlsplit(path).path
    return "unknown", path


def _s3_operation(method: str, headers: Any, path: str) -> str:
    """Name the S3 object operations the worker uses; others by method."""
    is_object = urlsplit(path).path.strip("/").count("/") >= 1
    if method == "PUT" and headers.get("x-amz-copy-source"):
        return "CopyObject"
    if is_object:
        names = {"GET": "GetObject", "PUT": "PutObject",
                 "DELETE": "DeleteObject", "HEAD": "HeadObject"}
        return names.get(method, method)
    return method


class _Handler(BaseHTTPRequestHandler):
    proxy: FaultProxy
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802 - name fixed by http.server
        self._relay()

    do_PUT = do_POST = do_DELETE = do_HEAD = do_GET

    def _relay(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        service, operation = identify(self.command, self.headers,
                                      self.path, body)
        kind = self.proxy.choose(service, operation)
        if kind == DROP:
            self.close_connection = True
            self.connection.close()
            return
        if kind is not None:
            self._send_error(kind, service)
            return
        self._forward(body)

    def _forward(self, body: bytes) -> None:
        upstream = http.client.HTTPConnection("127.0.0.1",
                                              self.proxy.target_port,
                                              timeout=60)
        headers = {k: v for k, v in self.headers.items()
                   if k.lower() not in ("connection", "keep-alive")}
        upstream.request(self.command, self.path, body=body, headers=headers)
        response = upstream.getresponse()
        payload = response.read()
        self.send_response(response.status)
        for name, value in response.getheaders():
            if name.lower() not in ("connection", "transfer-encoding",
                                    "content-length"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)
        upstream.close()

    def _send_error(self, kind: str, service: str) -> None:
        status = 400 if kind == THROTTLE else 500
        code = "ThrottlingException" if kind == THROTTLE else \
            "InternalFailure"
        if service == "dynamodb" and kind == THROTTLE:
            code = "ProvisionedThroughputExceededException"
        if service == "s3":
            status = 503 if kind == THROTTLE else 500
            code = "SlowDown" if kind == THROTTLE else "InternalError"
            payload = (f"<Error><Code>{code}</Code><Message>injected"
                       f"</Message></Error>").encode()
            content_type = "application/xml"
        else:
            payload = json.dumps({"__type": code,
                                  "message": "injected fault"}).encode()
            content_type = "application/x-amz-json-1.0"
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("x-amzn-query-error", f"{code};Sender")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        pass
