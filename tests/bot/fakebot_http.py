"""The fake Bot API server's HTTP side: `POST /bot<token>/<method>` (form, multipart or JSON) →
the fake's answer as `{"ok": …}`, and `GET /file/bot<token>/<path>` downloads."""

from __future__ import annotations

import contextlib
import email.parser
import email.policy
import json
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qsl, unquote

from tests.bot.telegram_rules import BotAPIError

_JSON_KEYS_SKIP = {"text", "caption", "callback_query_id", "secret_token", "url"}


class ApiHandler(BaseHTTPRequestHandler):
    fake: Any  # the FakeBotAPI serving the requests
    protocol_version = "HTTP/1.1"  # keep-alive, as httpx expects
    # Headers and body go out in separate writes; with Nagle on, the client's delayed ACK adds
    # ~40 ms to every call on a kept-alive connection — latency that is the fake's, not the bot's.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet: tests read the recorded calls instead

    def _reply(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        # The client may give up on a long poll while shutting down.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.wfile.write(body)

    def _json(self, status: int, payload: dict[str, Any]) -> None:
        self._reply(status, json.dumps(payload, ensure_ascii=False).encode("utf-8"))

    def do_GET(self) -> None:
        prefix = f"/file/bot{self.fake.token}/"
        path = unquote(self.path)  # PTB percent-encodes the URL path, including the token's colon
        if path.startswith(prefix):
            data = self.fake.file_bytes(path[len(prefix) :])
            if data is not None:
                self._reply(200, data, "application/octet-stream")
                return
        self._json(404, {"ok": False, "error_code": 404, "description": "Not Found"})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        prefix = f"/bot{self.fake.token}/"
        if not self.path.startswith(prefix):
            self._json(401, {"ok": False, "error_code": 401, "description": "Unauthorized"})
            return
        method = self.path[len(prefix) :]
        params = _decode(body, self.headers.get("Content-Type", ""))
        try:
            result = self.fake.handle(method, params)
        except BotAPIError as exc:
            payload: dict[str, Any] = {"ok": False, "error_code": exc.code, "description": exc.description}
            if exc.retry_after is not None:
                payload["parameters"] = {"retry_after": exc.retry_after}
            self._json(exc.code, payload)
            return
        self._json(200, {"ok": True, "result": result})


def _decode(body: bytes, content_type: str) -> dict[str, Any]:
    """Form, multipart or JSON body → parameters, with JSON-encoded values (reply_markup, …) decoded."""
    raw: dict[str, str] = {}
    if not body:
        return {}
    if content_type.startswith("application/json"):
        return dict(json.loads(body))
    if content_type.startswith("multipart/form-data"):
        msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            f"Content-Type: {content_type}\r\n\r\n".encode() + body
        )
        for part in msg.iter_parts():
            name = part.get_param("name", header="content-disposition")
            payload = part.get_payload(decode=True)
            raw[str(name)] = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""
            if part.get_filename():  # an uploaded file: its text above, its name here
                raw[f"{name}_filename"] = str(part.get_filename())
    else:
        raw = dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
    params: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in _JSON_KEYS_SKIP and value[:1] in ("{", "["):
            try:
                params[key] = json.loads(value)
                continue
            except ValueError:
                pass
        params[key] = value
    return params
