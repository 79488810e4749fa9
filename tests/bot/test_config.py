"""Settings: the example config is valid and complete; every mistake is one line naming its key."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from bot.config import ConfigError, load_settings, parse_settings

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "config.example.toml"


def test_example_config_documents_every_setting_with_the_defaults() -> None:
    example = load_settings(EXAMPLE, env={})
    defaults = parse_settings({}, base_dir=ROOT, env={})
    assert example.telegram == defaults.telegram
    assert (example.chat, example.digest) == (defaults.chat, defaults.digest)
    assert example.corpus_dir == ROOT / "data" / "corpus" and example.data_dir == ROOT / "data"
    # each key the loader knows appears in the example
    data = tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))
    assert set(data) == {"log_level", "telegram", "corpus", "chat", "digest"}
    assert set(data["telegram"]) >= {"token", "admins", "api_base_url", "mode", "webhook", "proxy"}


def test_token_from_environment_and_api_url_forms() -> None:
    s = parse_settings({"telegram": {"api_base_url": "http://127.0.0.1:8081/bot/"}}, env={"TELEGRAM_BOT_TOKEN": "1:A"})
    assert s.telegram.token == "1:A"
    assert s.telegram.bot_url == "http://127.0.0.1:8081/bot"
    assert s.telegram.file_url == "http://127.0.0.1:8081/file/bot"
    assert parse_settings({}, env={}).telegram.token == ""


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"telegram": {"admins": ["alice"]}}, "telegram.admins"),
        ({"telegram": {"token": "not a token"}}, "telegram.token"),
        ({"telegram": {"api_base_url": "api.telegram.org"}}, "telegram.api_base_url"),
        ({"telegram": {"mode": "push"}}, "telegram.mode"),
        ({"telegram": {"mode": "webhook"}}, "telegram.webhook.url"),
        ({"telegram": {"webhook": {"port": "80"}}}, "telegram.webhook.port"),
        ({"telegram": {"tokn": "1:A"}}, "telegram.tokn"),
        ({"chat": {"results_per_page": 0}}, "chat.results_per_page"),
        ({"chat": {"results_per_page": True}}, "chat.results_per_page"),
        ({"chat": "x"}, "chat"),
        ({"digest": {"timezone": "Mars/Olympus"}}, "digest.timezone"),
        ({"digest": {"cron": "every morning"}}, "digest.cron"),
        ({"digest": {"enabled": "yes"}}, "digest.enabled"),
        ({"log_level": "LOUD"}, "log_level"),
    ],
)
def test_invalid_settings_name_the_key(data: dict, key: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_settings(data, env={})
    message = str(info.value)
    assert message.startswith(f"{key}:") and "\n" not in message


def test_bad_file_gives_one_clear_line(tmp_path: Path) -> None:
    bad = tmp_path / "config.toml"
    bad.write_text('[chat]\nresults_per_page = "three"\n', encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, "-m", "bot", "run", "--config", str(bad)], capture_output=True, text=True, cwd=ROOT, timeout=60
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "chat.results_per_page" in lines[0]
    with pytest.raises(ConfigError, match="invalid TOML"):
        bad.write_text("[chat\n", encoding="utf-8")
        load_settings(bad)
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings(tmp_path / "missing.toml")


def test_missing_corpus_folder_is_a_config_error(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[corpus]\ndir = "nowhere"\n', encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, "-m", "bot", "run", "--config", str(config)],
        capture_output=True, text=True, cwd=ROOT, timeout=60, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"config error: corpus.dir: no such folder {tmp_path / 'nowhere'}"
    assert not (tmp_path / "data").exists()  # nothing was created


def _start_with(tmp_path: Path, corpus: Path, api: str, token: str) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "config.toml"
    config.write_text(
        f'[telegram]\ntoken = "{token}"\napi_base_url = "{api}"\n'
        f'[corpus]\ndir = "{corpus}"\ndata_dir = "{tmp_path / "data"}"\n',
        encoding="utf-8",
    )
    return subprocess.run(
        [sys.executable, "-m", "bot", "run", "--config", str(config)],
        capture_output=True, text=True, cwd=ROOT, timeout=90, stdin=subprocess.DEVNULL,
    )  # fmt: skip


def test_unreachable_bot_api_is_one_line_without_the_token(tmp_path: Path, corpus: Path) -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    token = "123456:SECRET-token-value"
    proc = _start_with(tmp_path, corpus, f"http://127.0.0.1:{port}", token)
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) <= 3, proc.stderr
    assert "Traceback" not in proc.stderr and token not in proc.stderr and "SECRET" not in proc.stderr
    assert "cannot reach the Telegram Bot API" in lines[-1] and "proxy" in lines[-1]


def test_rejected_token_is_one_line_without_the_token(tmp_path: Path, corpus: Path) -> None:
    from tests.bot.fakebot import FakeBotAPI

    fake = FakeBotAPI().start()
    try:
        token = "999999:WRONG-token-value"
        proc = _start_with(tmp_path, corpus, fake.url, token)
    finally:
        fake.stop()
    assert proc.returncode != 0
    assert len(proc.stderr.strip().splitlines()) <= 3, proc.stderr
    assert "Traceback" not in proc.stderr and "WRONG" not in proc.stderr
    assert "rejected the bot token" in proc.stderr


def test_proxy_must_be_a_proxy_url() -> None:
    with pytest.raises(ConfigError, match=r"^telegram\.proxy:"):
        parse_settings({"telegram": {"proxy": "127.0.0.1:1080"}}, env={})
    settings = parse_settings({"telegram": {"proxy": "socks5://127.0.0.1:1080"}}, env={})
    assert settings.telegram.proxy == "socks5://127.0.0.1:1080"


def test_check_says_what_works_one_line_each(tmp_path: Path, corpus: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from bot.cli import main
    from tests.bot.fakebot import TOKEN, FakeBotAPI

    fake = FakeBotAPI().start()
    try:
        config = tmp_path / "config.toml"
        body = f'api_base_url = "{fake.url}"\n[corpus]\ndir = "{corpus}"\ndata_dir = "{tmp_path / "data"}"\n'
        config.write_text(f'[telegram]\ntoken = "{TOKEN}"\n' + body, encoding="utf-8")
        assert main(["check", "--config", str(config)]) == 0
        out = capsys.readouterr().out.splitlines()
        assert [ln[0] for ln in out] == ["✓"] * 4
        assert "5 issue files" in out[1] and "token accepted" in out[3]
        config.write_text('[telegram]\ntoken = "1:WRONG"\n' + body, encoding="utf-8")
        assert main(["check", "--config", str(config)]) == 1
        last = capsys.readouterr().out.splitlines()[-1]
        assert last.startswith("✗ Telegram:") and "rejected" in last and "WRONG" not in last
    finally:
        fake.stop()


def test_without_a_config_paths_are_the_projects_not_the_current_folders(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings(env={})
    assert settings.data_dir == ROOT / "data" and settings.corpus_dir == ROOT / "data" / "corpus"


def test_the_live_corpus_is_seeded_once_into_the_data_folder(tmp_path: Path) -> None:
    from bot.config import ensure_corpus
    from bot.service import ChatService

    settings = parse_settings({"corpus": {"data_dir": "d"}}, base_dir=tmp_path, env={})
    assert settings.corpus_dir == tmp_path / "d" / "corpus"
    service, report = ChatService.open(settings)
    service.close()
    assert report.issues == 5 and len(list(settings.corpus_dir.glob("*.txt"))) == 5
    # an upload goes there, never into the git-tracked seeds/
    (settings.corpus_dir / "new.txt").write_text("标题\n\n正文一段。\n", encoding="utf-8")
    assert not (ROOT / "seeds" / "new.txt").exists()
    # a corpus folder that vanished later is not refilled behind the admin's back
    for f in settings.corpus_dir.iterdir():
        f.unlink()
    settings.corpus_dir.rmdir()
    assert ensure_corpus(settings) is False and not settings.corpus_dir.exists()


def test_a_question_cap_above_what_the_engine_reads_is_refused(tmp_path: Path) -> None:
    cfg = tmp_path / "config.toml"
    cfg.write_text("[chat]\nmax_question_chars = 5000\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="max_question_chars: must be at most 300"):
        load_settings(cfg)
