"""A tiny OTLP/HTTP trace receiver on a loopback port, for a real server process to export
to: it keeps the body of every POST to /v1/traces. `span_names` decodes them with the baked
project's own opentelemetry-proto (the OTLP exporter depends on it)."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tests.conftest import run
from tests.loopback_server import QuietHandler, serving

TRACES_PATH = "/v1/traces"

DECODE = """
import json, sys
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
names = []
for path in sys.argv[1:]:
    with open(path, "rb") as body:
        request = ExportTraceServiceRequest.FromString(body.read())
    for resource in request.resource_spans:
        for scope in resource.scope_spans:
            names.extend(span.name for span in scope.spans)
print(json.dumps(names))
"""


@dataclass
class Receiver:
    endpoint: str  # for OTEL_EXPORTER_OTLP_ENDPOINT
    exports: list[bytes] = field(default_factory=list)


@contextmanager
def running_receiver() -> Iterator[Receiver]:
    receiver = Receiver(endpoint="")

    class Handler(QuietHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if self.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            found = self.path == TRACES_PATH
            if found:
                receiver.exports.append(body)
            self.send_response(200 if found else 404)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", "0")
            self.end_headers()

    with serving(Handler) as port:
        receiver.endpoint = f"http://127.0.0.1:{port}"
        yield receiver


def span_names(receiver: Receiver, python: Path, directory: Path) -> list[str]:
    """The names of every span received, decoded by `python` (a baked project's venv)."""
    paths = []
    for index, body in enumerate(receiver.exports):
        path = directory / f"export-{index}.pb"
        path.write_bytes(body)
        paths.append(str(path))
    names: list[str] = json.loads(run([str(python), "-c", DECODE, *paths], cwd=directory).stdout)
    return names
