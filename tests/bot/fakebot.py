"""A fake Telegram Bot API server on 127.0.0.1 for end-to-end tests of the real Application.

It speaks the same HTTP as api.telegram.org (`POST /bot<token>/<method>`, form-encoded or
multipart, `{"ok": …}` answers), long-polls `getUpdates` from a queue tests push to, serves
`getFile` and file downloads, records every call, and can be told to fail a method with a
given error (403 Forbidden, 429 with retry_after, 5xx). It checks what Telegram checks — HTML
that parses, text within 4096 characters, callback data within 64 bytes — so a rendering bug
fails a test here just as it would fail in production.

Runs in its own threads, so both async tests and the synchronous benchmark can drive it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from typing import Any

from tests.bot.fakebot_http import ApiHandler
from tests.bot.telegram_rules import (
    BotAPIError,
    as_plain,
    check_inline_button,
    check_inline_results,
    check_markup,
    check_text,
)

TOKEN = "123456:TEST-token_for_fake-server"
BOT_ID = 123456
BOT_USERNAME = "zx_test_bot"


@dataclass
class Call:
    """One request the bot made: method name, decoded parameters, when, and what it got back."""

    method: str
    params: dict[str, Any]
    at: float
    result: Any = None
    error: tuple[int, str] | None = None

    @property
    def chat_id(self) -> int | None:
        value = self.params.get("chat_id")
        return int(value) if value is not None else None

    @property
    def text(self) -> str:
        return str(self.params.get("text", ""))

    @property
    def plain(self) -> str:
        """The message text as a user sees it: tags removed, entities decoded."""
        return as_plain(self.text, self.params.get("parse_mode"))

    @property
    def buttons(self) -> list[tuple[str, str]]:
        """(label, callback_data) of every inline button, row by row."""
        markup = self.params.get("reply_markup") or {}
        return [(b["text"], b.get("callback_data", "")) for row in markup.get("inline_keyboard", []) for b in row]


@dataclass
class Failure:
    method: str
    code: int
    description: str
    retry_after: int | None = None
    times: int = 1
    match: Callable[[dict[str, Any]], bool] | None = None


@dataclass
class FakeBotAPI:
    token: str = TOKEN
    bot_id: int = BOT_ID
    username: str = BOT_USERNAME
    calls: list[Call] = field(default_factory=list)
    files: dict[str, tuple[str, bytes]] = field(default_factory=dict)  # file_id → (file_path, data)
    pushed_at: dict[int, float] = field(default_factory=dict)  # update_id → monotonic time pushed
    # Long polls end after at most this long even if the bot asked for more: PTB waits for the
    # poll in flight when it stops, and tests should not wait seconds for every shutdown.
    long_poll_cap: float = 0.25

    def __post_init__(self) -> None:
        self._cond = threading.Condition()
        self._updates: list[dict[str, Any]] = []
        self._update_ids = itertools.count(1)
        self._message_ids = itertools.count(1000)
        self._failures: list[Failure] = []
        self._by_chat: dict[tuple[str, int | None], list[Call]] = {}
        self._chat_types: dict[int, str] = {}
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._closing = False

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> FakeBotAPI:
        api = self

        class Handler(ApiHandler):
            fake = api

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        # serve_forever checks for shutdown every poll_interval (0.5 s by default): every test's
        # teardown waited that long
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, name="fake-bot-api", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    @property
    def url(self) -> str:
        """The value for `[telegram] api_base_url`."""
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    # -- updates tests push ------------------------------------------------------------------

    def push(self, update: dict[str, Any]) -> int:
        """Queue a raw update (update_id is assigned); returns its update_id."""
        with self._cond:
            update_id = next(self._update_ids)
            update = {**update, "update_id": update_id}
            self._updates.append(update)
            self.pushed_at[update_id] = time.monotonic()
            self._cond.notify_all()
            return update_id

    def message_dict(
        self,
        text: str | None,
        chat_id: int,
        user_id: int | None = None,
        chat_type: str = "private",
        reply_to: dict[str, Any] | None = None,
        document: dict[str, Any] | None = None,
        first_name: str = "测试",
    ) -> dict[str, Any]:
        user_id = chat_id if user_id is None else user_id
        self._chat_types[chat_id] = chat_type
        chat: dict[str, Any] = {"id": chat_id, "type": chat_type}
        if chat_type != "private":
            chat["title"] = "测试群"
        else:
            chat["first_name"] = first_name
        msg: dict[str, Any] = {
            "message_id": next(self._message_ids),
            "date": int(time.time()),
            "chat": chat,
            "from": {"id": user_id, "is_bot": False, "first_name": first_name},
        }
        if text is not None:
            msg["text"] = text
            entities = _entities(text)
            if entities:
                msg["entities"] = entities
        if reply_to is not None:
            msg["reply_to_message"] = reply_to
        if document is not None:
            msg["document"] = document
        return msg

    def message(self, text: str, chat_id: int = 1001, user_id: int | None = None, **kw: Any) -> int:
        """A user's text message; commands and @mentions get the entities Telegram would add."""
        return self.push({"message": self.message_dict(text, chat_id, user_id, **kw)})

    def callback(self, data: str, on: Call, user_id: int | None = None) -> int:
        """A press of an inline button with `data` on the bot's message `on` (a recorded sendMessage)."""
        message = on.result
        chat_id = message["chat"]["id"]
        return self.push(
            {
                "callback_query": {
                    "id": str(next(self._message_ids)),
                    "from": {"id": user_id or chat_id, "is_bot": False, "first_name": "测试"},
                    "chat_instance": f"ci{chat_id}",
                    "message": message,
                    "data": data,
                }
            }
        )

    def inline_query(self, query: str, user_id: int = 1001) -> int:
        """A user typing `@bot query` in some chat."""
        return self.push(
            {
                "inline_query": {
                    "id": str(next(self._message_ids)),
                    "from": {"id": user_id, "is_bot": False, "first_name": "测试"},
                    "query": query,
                    "offset": "",
                }
            }
        )

    def document(
        self,
        data: bytes,
        file_name: str,
        chat_id: int = 1001,
        user_id: int | None = None,
        caption: str | None = None,
        **kw: Any,
    ) -> int:
        """A user sending a file (with an optional caption): served later through getFile and the file URL."""
        file_id = f"file{len(self.files) + 1}"
        self.files[file_id] = (f"documents/{file_id}.txt", data)
        doc = {
            "file_id": file_id,
            "file_unique_id": f"u{file_id}",
            "file_name": file_name,
            "file_size": len(data),
        }
        message = self.message_dict(None, chat_id, user_id, document=doc, **kw)
        if caption is not None:
            message["caption"] = caption
        return self.push({"message": message})

    # -- failures ----------------------------------------------------------------------------

    def fail(
        self,
        method: str,
        code: int,
        description: str = "",
        retry_after: int | None = None,
        times: int = 1,
        match: Callable[[dict[str, Any]], bool] | None = None,
    ) -> None:
        """Answer the next `times` calls of `method` (matching `match`) with an error."""
        description = description or {
            403: "Forbidden: bot was blocked by the user",
            429: f"Too Many Requests: retry after {retry_after}",
            500: "Internal Server Error",
            502: "Bad Gateway",
        }.get(code, "Bad Request")
        with self._cond:
            self._failures.append(Failure(method, code, description, retry_after, times, match))

    # -- inspection --------------------------------------------------------------------------

    def sent(self, chat_id: int | None = None, method: str = "sendMessage", ok: bool | None = True) -> list[Call]:
        """Calls of `method` to `chat_id`: accepted (ok=True), refused (False) or all (None)."""
        with self._cond:
            # indexed by (method, chat): the benchmark's waiters poll this many times a second
            calls = self._by_chat.get((method, chat_id), [])
            return [c for c in calls if ok is None or (c.error is None) == ok]

    def methods(self) -> list[str]:
        with self._cond:
            return [c.method for c in self.calls]

    async def wait_for(
        self,
        method: str = "sendMessage",
        chat_id: int | None = None,
        count: int = 1,
        timeout: float = 10.0,  # noqa: ASYNC109  (a deadline for polling recorded calls)
        after: int = 0,
    ) -> list[Call]:
        """Wait until `count` successful `method` calls (past the first `after`) have been made."""
        deadline = time.monotonic() + timeout
        while True:
            calls = self.sent(chat_id, method)[after:]
            if len(calls) >= count:
                return calls
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"timed out waiting for {count} {method} to {chat_id}; got {len(calls)}; "
                    f"calls: {self.methods()[-20:]}"
                )
            await asyncio.sleep(0.01)

    async def settle(self, seconds: float = 0.3) -> None:
        """Give the bot time to (not) do something — for asserting that nothing was sent."""
        await asyncio.sleep(seconds)

    # -- the API -----------------------------------------------------------------------------

    def handle(self, method: str, params: dict[str, Any]) -> Any:
        call = Call(method, params, time.monotonic())
        with self._cond:
            self.calls.append(call)
            self._by_chat.setdefault((method, None), []).append(call)
            if call.params.get("chat_id") not in (None, ""):
                with contextlib.suppress(ValueError):
                    self._by_chat.setdefault((method, call.chat_id), []).append(call)
            failure = self._take_failure(method, params)
        if failure is not None:
            call.error = (failure.code, failure.description)
            raise BotAPIError(failure.code, failure.description, failure.retry_after)
        try:
            result = self._get_updates(params) if method == "getUpdates" else self._answer(method, params)
        except BotAPIError as exc:
            call.error = (exc.code, exc.description)
            raise
        call.result = result
        return result

    def _take_failure(self, method: str, params: dict[str, Any]) -> Failure | None:
        for failure in self._failures:
            if failure.method == method and (failure.match is None or failure.match(params)):
                failure.times -= 1
                if failure.times <= 0:
                    self._failures.remove(failure)
                return failure
        return None

    def _get_updates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        offset = int(params.get("offset", 0) or 0)
        timeout = min(float(params.get("timeout", 0) or 0), self.long_poll_cap)
        limit = int(params.get("limit", 100) or 100)
        deadline = time.monotonic() + timeout
        with self._cond:
            # Telegram forgets updates below the offset: they were confirmed.
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
            while not self._updates and not self._closing:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            return self._updates[:limit]

    def _answer(self, method: str, params: dict[str, Any]) -> Any:
        if method == "getMe":
            return {
                "id": self.bot_id,
                "is_bot": True,
                "first_name": "政协报问答",
                "username": self.username,
                "can_join_groups": True,
                "can_read_all_group_messages": False,
                "supports_inline_queries": True,
            }
        if method in ("sendMessage", "editMessageText"):
            text = str(params.get("text", ""))
            check_text(text, params.get("parse_mode"))
            check_markup(params.get("reply_markup"))
            return self._bot_message(params, text=text)
        if method == "sendDocument":
            msg = self._bot_message(params)
            name = str(params.get("document_filename") or "file")
            msg["document"] = {"file_id": f"sent{msg['message_id']}", "file_unique_id": "s", "file_name": name}
            return msg
        if method == "answerInlineQuery":
            check_inline_results(params.get("results") or [])
            check_inline_button(params.get("button"))
            return True
        if method == "editMessageReplyMarkup":
            check_markup(params.get("reply_markup"))
            return self._bot_message(params)
        if method == "getFile":
            file_id = str(params.get("file_id"))
            if file_id not in self.files:
                raise BotAPIError(400, "Bad Request: invalid file_id")
            path, data = self.files[file_id]
            return {
                "file_id": file_id,
                "file_unique_id": f"u{file_id}",
                "file_size": len(data),
                "file_path": path,
            }
        # deleteWebhook, setMyCommands, answerCallbackQuery, sendChatAction, …
        return True

    def _bot_message(self, params: dict[str, Any], text: str | None = None) -> dict[str, Any]:
        chat_id = int(params["chat_id"])
        msg: dict[str, Any] = {
            "message_id": int(params.get("message_id") or next(self._message_ids)),
            "date": int(time.time()),
            "chat": {"id": chat_id, "type": self._chat_types.get(chat_id, "private")},
            "from": {
                "id": self.bot_id,
                "is_bot": True,
                "first_name": "政协报问答",
                "username": self.username,
            },
        }
        if text is not None:
            msg["text"] = as_plain(text, params.get("parse_mode"))
        if params.get("reply_markup"):
            msg["reply_markup"] = params["reply_markup"]
        return msg

    def file_bytes(self, path: str) -> bytes | None:
        for file_path, data in self.files.values():
            if file_path == path:
                return data
        return None


def _entities(text: str) -> list[dict[str, Any]]:
    """The entities Telegram attaches: a bot_command at offset 0, and @mentions."""
    entities = []
    m = re.match(r"/[A-Za-z0-9_]+(@[A-Za-z0-9_]+)?", text)
    if m:
        entities.append({"type": "bot_command", "offset": 0, "length": m.end()})
    for m in re.finditer(r"(?<![A-Za-z0-9_/])@[A-Za-z][A-Za-z0-9_]{3,}", text):
        prefix = text[: m.start()]
        offset = len(prefix.encode("utf-16-le")) // 2
        entities.append({"type": "mention", "offset": offset, "length": len(m.group().encode("utf-16-le")) // 2})
    return entities
