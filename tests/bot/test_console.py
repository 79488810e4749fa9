"""Console mode: `python -m bot run` without a token answers in the terminal and exits on EOF."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_console(tmp_path: Path, corpus: Path, data_dir: Path, stdin: str) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "config.toml"
    config.write_text(f'[corpus]\ndir = "{corpus}"\ndata_dir = "{data_dir}"\n', encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != "TELEGRAM_BOT_TOKEN"}
    return subprocess.run(
        [sys.executable, "-m", "bot", "run", "--config", str(config)],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=120,
    )


def test_console_answers_questions_and_buttons_and_exits_on_eof(tmp_path: Path, corpus: Path, data_dir: Path) -> None:
    lines = [
        "招商引资",
        "/more",
        "/ask 漳县创建了多少个城区政协委员联络工作室?",
        "/source 1",
        "/full",
        "😀",
        "",
        "/subscribe 招商引资",
        "/subscriptions",
        "/stats",
        "/reload",
        "/nonsense",
    ]
    proc = run_console(tmp_path, corpus, data_dir, "\n".join(lines) + "\n")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "答:" in out and "7个" in out and "003_86c0c9587050140c · ¶2" in out
    assert "→ /source 1  /source 2  /source 3  /more" in out  # buttons as commands
    assert "4." in out  # the /more page
    assert "树立品牌 示范效益日益凸显" in out  # the whole article (/full)
    assert "没有可检索的文字" in out
    assert "已订阅" in out and "当前订阅关键词:招商引资" in out
    assert "已回答问题:3 个" in out  # the emoji counts: it was asked
    assert "没有新增、更新或删除的报纸" in out
    assert "不认识的命令 /nonsense" in out
    assert "<b>" not in out and "&lt;" not in out  # plain text, not HTML


def test_console_quit_and_empty_input(tmp_path: Path, corpus: Path, data_dir: Path) -> None:
    assert run_console(tmp_path, corpus, data_dir, "").returncode == 0
    proc = run_console(tmp_path, corpus, data_dir, "/quit\n漳县创建了多少个城区政协委员联络工作室?\n")
    assert proc.returncode == 0 and "7个" not in proc.stdout
