"""`python -m bot run` with a token: serves the (fake) Bot API and stops cleanly on SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.bot.fakebot import FakeBotAPI

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
async def test_run_serves_telegram_and_shuts_down_gracefully(
    fakebot: FakeBotAPI, tmp_path: Path, corpus: Path, data_dir: Path, sig: signal.Signals
) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        f'[telegram]\napi_base_url = "{fakebot.url}"\npoll_timeout = 1\n'
        f'[corpus]\ndir = "{corpus}"\ndata_dir = "{data_dir}"\n',
        encoding="utf-8",
    )
    env = {**os.environ, "TELEGRAM_BOT_TOKEN": fakebot.token}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "run", "--config", str(config),
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        fakebot.message("漳县创建了多少个城区政协委员联络工作室?")
        [reply] = await fakebot.wait_for(chat_id=1001, timeout=60)
        assert "7个" in reply.plain
        proc.send_signal(sig)
        _, stderr = await asyncio.wait_for(proc.communicate(), 30)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0, stderr.decode()
    log = stderr.decode()
    assert "serving as @zx_test_bot" in log and "stopping" in log  # logging goes to stderr
    assert fakebot.token not in log  # httpx's request lines (with the token) are kept out


def test_a_garbled_database_stops_start_up_with_one_line(
    tmp_path: Path, corpus: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from bot.app import run

    monkeypatch.delenv("TELEGRAM_BOT_TOKEN", raising=False)
    db = data_dir / "bot.sqlite3"
    db.write_bytes(b"this is not a database" * 300)
    config = tmp_path / "config.toml"
    config.write_text(f'[corpus]\ndir = "{corpus}"\ndata_dir = "{data_dir}"\n', encoding="utf-8")
    assert run(str(config)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert str(db) in err[-1] and "Move it aside" in err[-1] and "Traceback" not in "\n".join(err)
