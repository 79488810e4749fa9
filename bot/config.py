"""Chat layer settings: one TOML file → one frozen, validated `Settings`.

Every mistake is reported as a single `ConfigError` line naming the offending key, because
the person reading it is an administrator at a terminal, not a Python developer.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from retrieval.model import MAX_QUESTION_CHARS

TELEGRAM_API = "https://api.telegram.org"
TOKEN_ENV = "TELEGRAM_BOT_TOKEN"
# The one cap on a question's length, in characters (chat, inline mode and the CLI alike): a
# question, not an essay; [chat] max_question_chars overrides it.


PROJECT_ROOT = Path(__file__).resolve().parents[1]  # where config.example.toml is
_BUNDLED_SEEDS = PROJECT_ROOT / "seeds"


class ConfigError(ValueError):
    """An invalid setting; str(exc) is one line that names the key."""


@dataclass(frozen=True)
class WebhookSettings:
    url: str = ""  # public HTTPS URL Telegram posts to; empty = polling only
    listen: str = "127.0.0.1"
    port: int = 8443
    path: str = "telegram"
    secret_token: str = ""


@dataclass(frozen=True)
class TelegramSettings:
    token: str = ""
    admins: frozenset[int] = frozenset()
    api_base_url: str = TELEGRAM_API  # root of the Bot API server (self-hosted or a test fake)
    mode: str = "polling"  # "polling" | "webhook"
    poll_timeout: int = 30  # long-poll seconds
    webhook: WebhookSettings = field(default_factory=WebhookSettings)
    proxy: str = ""  # http(s):// or socks5:// proxy for the Bot API and file downloads; empty = direct

    @property
    def bot_url(self) -> str:
        """PTB's base_url: the token and method name are appended to it."""
        return f"{self.api_base_url}/bot"

    @property
    def file_url(self) -> str:
        return f"{self.api_base_url}/file/bot"


@dataclass(frozen=True)
class ChatSettings:
    results_per_page: int = 3
    rate_limit_count: int = 6  # questions a user may ask per window …
    rate_limit_seconds: float = 30.0  # … before getting a polite "please slow down"
    max_question_chars: int = MAX_QUESTION_CHARS  # longer messages are cut: a question, not an essay
    concurrent_updates: int = 16


@dataclass(frozen=True)
class DigestSettings:
    enabled: bool = True
    cron: str = "0 8 * * *"
    timezone: str = "Asia/Shanghai"
    send_empty: bool = False
    auto_ingest_minutes: int = 0  # 0 = never rescan the corpus folder on a timer
    max_messages: int = 3  # a digest longer than this for one chat is condensed into one summary

    @property
    def tzinfo(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


@dataclass(frozen=True)
class Settings:
    corpus_dir: Path = Path("data/corpus")
    data_dir: Path = Path("data")
    seed_from: Path | None = None  # copied into corpus_dir on the first run (a new data folder)
    log_level: str = "INFO"
    telegram: TelegramSettings = field(default_factory=TelegramSettings)
    chat: ChatSettings = field(default_factory=ChatSettings)
    digest: DigestSettings = field(default_factory=DigestSettings)
    source: Path | None = None  # the file these settings came from

    @property
    def db_path(self) -> Path:
        return self.data_dir / "bot.sqlite3"

    def is_admin(self, user_id: int | None) -> bool:
        return user_id is not None and user_id in self.telegram.admins


_LOG_LEVELS = {"DEBUG", "INFO", "WARNING", "ERROR"}


class _Section:
    """Reads one TOML table, remembering which keys were used so unknown ones are rejected."""

    def __init__(self, name: str, data: Any) -> None:
        if not isinstance(data, dict):
            raise ConfigError(f"{name}: must be a table, like [{name}]")
        self.name = name
        self.data: dict[str, Any] = data
        self.used: set[str] = set()

    def key(self, key: str) -> str:
        return f"{self.name}.{key}" if self.name else key

    def get(self, key: str, kind: type | tuple[type, ...], default: Any) -> Any:
        self.used.add(key)
        if key not in self.data:
            return default
        value = self.data[key]
        # bool is an int subclass in Python; a `true` where a number belongs is a typo.
        if isinstance(value, bool) and kind is not bool:
            raise ConfigError(f"{self.key(key)}: expected {_kind_name(kind)}, got {value!r}")
        if not isinstance(value, kind):
            raise ConfigError(f"{self.key(key)}: expected {_kind_name(kind)}, got {value!r}")
        return value

    def section(self, key: str) -> _Section:
        self.used.add(key)
        return _Section(self.key(key), self.data.get(key, {}))

    def finish(self) -> None:
        unknown = sorted(set(self.data) - self.used)
        if unknown:
            raise ConfigError(f"{self.key(unknown[0])}: unknown setting")


def _kind_name(kind: type | tuple[type, ...]) -> str:
    names = {str: "a string", int: "an integer", float: "a number", bool: "true or false", list: "a list"}
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(names.get(k, k.__name__) for k in kinds)


def _positive(
    section: _Section, key: str, kind: type, default: Any, minimum: float = 1, maximum: float | None = None
) -> Any:
    value = section.get(key, (int, float) if kind is float else kind, default)
    if value < minimum:
        raise ConfigError(f"{section.key(key)}: must be at least {minimum}, got {value!r}")
    if maximum is not None and value > maximum:
        raise ConfigError(f"{section.key(key)}: must be at most {maximum}, got {value!r}")
    return kind(value)


def _check_cron(key: str, cron: str) -> None:
    # Validate with the trigger the digest job will use: it reads weekdays as crontab does
    # (0 or 7 = Sunday), unlike APScheduler 3's own from_crontab.
    from bot.schedule import cron_trigger

    if len(cron.split()) != 5:
        raise ConfigError(f"{key}: expected 5 crontab fields like '0 8 * * *', got {cron!r}")
    try:
        cron_trigger(cron, timezone=ZoneInfo("UTC"))
    except ValueError as exc:
        raise ConfigError(f"{key}: {exc}") from None


def parse_settings(
    data: dict[str, Any], base_dir: Path | None = None, env: dict[str, str] | None = None
) -> Settings:
    """Validate a parsed TOML document; relative paths are taken from `base_dir` (the config's folder),
    else from the project root — never the current folder, so a service started elsewhere still finds
    its data (and its subscribers)."""
    env = dict(os.environ) if env is None else env
    root = _Section("", data)
    base = base_dir or PROJECT_ROOT

    tg = root.section("telegram")
    token = tg.get("token", str, "").strip() or env.get(TOKEN_ENV, "").strip()
    if token and (":" not in token or any(c.isspace() for c in token)):
        raise ConfigError(f"telegram.token: does not look like a bot token ('123456:ABC…'); see {TOKEN_ENV}")
    admins = tg.get("admins", list, [])
    if not all(isinstance(a, int) and not isinstance(a, bool) for a in admins):
        raise ConfigError("telegram.admins: expected a list of numeric Telegram user IDs, like [123456789]")
    api = tg.get("api_base_url", str, TELEGRAM_API).strip().rstrip("/")
    api = api.removesuffix("/bot")
    if not api.startswith(("http://", "https://")):
        raise ConfigError(f"telegram.api_base_url: expected an http(s) URL, got {api!r}")
    mode = tg.get("mode", str, "polling")
    if mode not in ("polling", "webhook"):
        raise ConfigError(f"telegram.mode: expected 'polling' or 'webhook', got {mode!r}")
    poll_timeout = _positive(tg, "poll_timeout", int, 30, minimum=0)
    wh = tg.section("webhook")
    webhook = WebhookSettings(
        url=wh.get("url", str, ""),
        listen=wh.get("listen", str, "127.0.0.1"),
        port=_positive(wh, "port", int, 8443),
        path=wh.get("path", str, "telegram").strip("/"),
        secret_token=wh.get("secret_token", str, ""),
    )
    wh.finish()
    if mode == "webhook" and not webhook.url.startswith("https://"):
        raise ConfigError(
            "telegram.webhook.url: webhook mode needs the public https:// URL Telegram will call"
        )
    proxy = tg.get("proxy", str, "").strip()
    if proxy and not proxy.startswith(("http://", "https://", "socks5://", "socks5h://")):
        raise ConfigError(f"telegram.proxy: expected an http://, https:// or socks5:// URL, got {proxy!r}")
    tg.finish()

    corpus = root.section("corpus")
    data_dir = base / corpus.get("data_dir", str, "data")
    # The live corpus is the bot's data, out of git: by default a folder of the data directory, filled
    # from the bundled seeds on the first run (see ensure_corpus); corpus.dir points anywhere else.
    configured = corpus.get("dir", str, "")
    corpus_dir = base / configured if configured else data_dir / "corpus"
    seed_from = None if configured else _BUNDLED_SEEDS
    corpus.finish()

    chat_s = root.section("chat")
    chat = ChatSettings(
        results_per_page=_positive(chat_s, "results_per_page", int, 3),
        rate_limit_count=_positive(chat_s, "rate_limit_count", int, 6),
        rate_limit_seconds=_positive(chat_s, "rate_limit_seconds", float, 30.0, minimum=0),
        max_question_chars=_positive(
            chat_s, "max_question_chars", int, MAX_QUESTION_CHARS, minimum=10, maximum=MAX_QUESTION_CHARS
        ),
        concurrent_updates=_positive(chat_s, "concurrent_updates", int, 16),
    )
    if chat.results_per_page > 10:
        raise ConfigError(f"chat.results_per_page: at most 10, got {chat.results_per_page}")
    chat_s.finish()

    dg = root.section("digest")
    digest = DigestSettings(
        enabled=dg.get("enabled", bool, True),
        cron=dg.get("cron", str, "0 8 * * *").strip(),
        timezone=dg.get("timezone", str, "Asia/Shanghai"),
        send_empty=dg.get("send_empty", bool, False),
        auto_ingest_minutes=_positive(dg, "auto_ingest_minutes", int, 0, minimum=0),
        max_messages=_positive(dg, "max_messages", int, 3, minimum=1),
    )
    try:
        ZoneInfo(digest.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"digest.timezone: unknown time zone {digest.timezone!r}") from None
    _check_cron("digest.cron", digest.cron)
    dg.finish()

    log_level = root.get("log_level", str, "INFO").upper()
    if log_level not in _LOG_LEVELS:
        raise ConfigError(f"log_level: expected one of {sorted(_LOG_LEVELS)}, got {log_level!r}")
    root.finish()

    return Settings(
        corpus_dir=corpus_dir,
        data_dir=data_dir,
        seed_from=seed_from,
        log_level=log_level,
        telegram=TelegramSettings(
            token=token,
            admins=frozenset(admins),
            api_base_url=api,
            mode=mode,
            poll_timeout=poll_timeout,
            webhook=webhook,
            proxy=proxy,
        ),
        chat=chat,
        digest=digest,
    )


def load_settings(path: str | Path | None = None, env: dict[str, str] | None = None) -> Settings:
    """Read settings from `path`; without one, config.toml in the current folder or the project root,
    else the defaults (paths from the project root)."""
    if path is None:
        found = [p for p in (Path("config.toml"), PROJECT_ROOT / "config.toml") if p.exists()]
        if not found:
            return parse_settings({}, PROJECT_ROOT, env)
        path = found[0]
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file ({exc.strerror})") from None
    try:
        data = tomllib.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML ({exc})") from None
    settings = parse_settings(data, path.resolve().parent, env)
    return _with_source(settings, path)


def ensure_corpus(settings: Settings) -> bool:
    """On the first run (no database yet in the data folder), create the default corpus folder from
    the bundled seeds. Never later: a corpus folder that vanished (an unmounted share) is a fault to
    report, not something to refill. Returns whether it seeded."""
    if settings.seed_from is None or settings.corpus_dir.exists() or settings.db_path.exists():
        return False
    settings.corpus_dir.mkdir(parents=True, exist_ok=True)
    for f in sorted(settings.seed_from.glob("*.txt")):
        (settings.corpus_dir / f.name).write_bytes(f.read_bytes())
    return True


def _with_source(settings: Settings, path: Path) -> Settings:
    from dataclasses import replace

    return replace(settings, source=path)
