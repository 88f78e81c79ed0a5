"""A small HTTP double of Confluent Schema Registry's REST API, for end-to-end tests.

No Schema Registry server can be installed here, so the end-to-end tests talk to this
over real HTTP instead. It implements what confluent-kafka's client calls for
producing and reading Avro: register a schema under a subject (idempotent, one id per
distinct schema), look a schema up by id, list subjects and their latest version.
Compatibility rules are not modelled.
"""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"


class RegistryState:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.ids: dict[str, int] = {}  # schema text -> id
        self.schemas: dict[int, str] = {}
        self.subjects: dict[str, list[int]] = {}  # subject -> schema ids, one per version
        self.fail_status: int | None = None  # answer every request with this status

    def register(self, subject: str, schema: str) -> int:
        with self.lock:
            schema_id = self.ids.setdefault(schema, len(self.ids) + 1)
            self.schemas[schema_id] = schema
            versions = self.subjects.setdefault(subject, [])
            if schema_id not in versions:
                versions.append(schema_id)
            return schema_id


def _handler(state: RegistryState) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _reply(self, status: int, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", CONTENT_TYPE)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _not_found(self, code: int, message: str) -> None:
            self._reply(404, {"error_code": code, "message": message})

        def _failing(self) -> bool:
            if state.fail_status is None:
                return False
            self._reply(state.fail_status, {"error_code": state.fail_status, "message": "fault"})
            return True

        def do_POST(self) -> None:
            if self._failing():
                return
            path = self.path.split("?", 1)[0]
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
            if match := re.fullmatch(r"/subjects/([^/]+)/versions", path):
                self._reply(200, {"id": state.register(match[1], body["schema"])})
            elif match := re.fullmatch(r"/subjects/([^/]+)", path):
                schema_id = state.ids.get(body["schema"])
                versions = state.subjects.get(match[1], [])
                if schema_id is None or schema_id not in versions:
                    self._not_found(40403, "Schema not found")
                    return
                self._reply(200, {
                    "subject": match[1], "id": schema_id,
                    "version": versions.index(schema_id) + 1, "schema": body["schema"],
                })  # fmt: skip
            else:
                self._not_found(404, "no such endpoint")

        def do_GET(self) -> None:
            if self._failing():
                return
            path = self.path.split("?", 1)[0]
            if match := re.fullmatch(r"/schemas/ids/(\d+)", path):
                schema = state.schemas.get(int(match[1]))
                if schema is None:
                    self._not_found(40403, "Schema not found")
                else:
                    self._reply(200, {"schema": schema})
            elif path == "/subjects":
                self._reply(200, sorted(state.subjects))
            elif match := re.fullmatch(r"/subjects/([^/]+)/versions/latest", path):
                versions = state.subjects.get(match[1])
                if not versions:
                    self._not_found(40401, "Subject not found")
                    return
                self._reply(200, {
                    "subject": match[1], "id": versions[-1], "version": len(versions),
                    "schema": state.schemas[versions[-1]],
                })  # fmt: skip
            else:
                self._not_found(404, "no such endpoint")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


class FakeSchemaRegistry:
    """Serves on 127.0.0.1:<free port>; `url` is what a client is configured with."""

    def __init__(self) -> None:
        self.state = RegistryState()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self.state))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> FakeSchemaRegistry:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
