"""Console mode: `python -m bot run` without a token answers in the terminal and exits on EOF."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

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
        "/source 1",
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
    assert "下次推送:" in out and "(Asia/Shanghai)" in out  # subscribing says when digests come
    assert "收到问题:3 个(有确切答案 1 个,未找到确切答案 2 个)" in out  # the emoji counts: it was asked
    assert "没有这个按钮" not in out  # /source 1 after /more: the question's first page is still there
    assert "没有新增、更新或删除的报纸" in out
    assert "不认识的命令 /nonsense。发送 /help 查看全部命令。" in out
    assert "<b>" not in out and "&lt;" not in out  # plain text, not HTML


def test_console_quit_and_empty_input(tmp_path: Path, corpus: Path, data_dir: Path) -> None:
    assert run_console(tmp_path, corpus, data_dir, "").returncode == 0
    proc = run_console(tmp_path, corpus, data_dir, "/quit\n漳县创建了多少个城区政协委员联络工作室?\n")
    assert proc.returncode == 0 and "7个" not in proc.stdout


def test_console_at_a_terminal_edits_lines_keeps_history_and_ends_cleanly_on_ctrl_d(
    tmp_path: Path, corpus: Path, data_dir: Path
) -> None:
    """Through a pseudo-terminal, as a person types: Backspace over a Chinese character, the left
    arrow to insert, the up arrow to ask again, Ctrl-D to leave; no log lines in the conversation."""
    import pty
    import select
    import time

    config = tmp_path / "config.toml"
    config.write_text(f'[corpus]\ndir = "{corpus}"\ndata_dir = "{data_dir}"\n', encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != "TELEGRAM_BOT_TOKEN"} | {
        "XDG_CACHE_HOME": str(tmp_path / "cache"), "TERM": "xterm"
    }
    main, child = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot", "run", "--config", str(config)],
        stdin=child, stdout=child, stderr=child, cwd=ROOT, env=env, close_fds=True,
    )  # fmt: skip
    os.close(child)
    seen = b""

    def read_until(marker: bytes, timeout: float = 60) -> None:
        nonlocal seen
        deadline = time.monotonic() + timeout
        while marker not in seen and time.monotonic() < deadline:
            ready, _, _ = select.select([main], [], [], 0.2)
            if ready:
                try:
                    seen += os.read(main, 65536)
                except OSError:
                    break
        assert marker in seen, seen.decode("utf-8", "replace")[-800:]

    try:
        read_until("问> ".encode())
        # 酒泉市政协2023年落地几个项目 typed with a slip: an extra 啊 erased with Backspace, and 了
        # inserted after moving left over 几个项目 (4 characters)
        os.write(main, "酒泉市政协2023年落地几个项目啊".encode() + b"\x7f" + b"\x1b[D" * 4 + "了".encode() + b"\r")
        read_until("4个项目".encode())
        count = seen.count("4个项目,总投资70亿元".encode())
        os.write(main, b"\x1b[A\r")  # history: the same question again
        deadline = time.monotonic() + 60
        while seen.count("4个项目,总投资70亿元".encode()) <= count and time.monotonic() < deadline:
            ready, _, _ = select.select([main], [], [], 0.2)
            if ready:
                seen += os.read(main, 65536)
        assert seen.count("4个项目,总投资70亿元".encode()) > count
        prompts = seen.count("问> ".encode())
        deadline = time.monotonic() + 60
        while seen.count("问> ".encode()) < prompts + 1 and not seen.rstrip().endswith("问>".encode()):
            if time.monotonic() > deadline:
                break
            ready, _, _ = select.select([main], [], [], 0.2)
            if ready:
                seen += os.read(main, 65536)
        os.write(main, b"\x04")  # Ctrl-D, once the prompt is back
        assert proc.wait(timeout=30) == 0
        with_tail = seen
        try:
            while True:
                ready, _, _ = select.select([main], [], [], 0.2)
                if not ready:
                    break
                with_tail += os.read(main, 65536)
        except OSError:
            pass
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(main)
    text = with_tail.decode("utf-8", "replace")
    assert "^[[D" not in text and "INFO" not in text
    assert text.rstrip(" ").endswith(("\n", "\r\n"))  # the shell prompt starts on a line of its own


def test_console_reads_follow_ups_and_new_forgets(tmp_path: Path, corpus: Path, data_dir: Path) -> None:
    lines = ["酒泉市政协2023年落地了几个项目?", "那武威呢?", "/new", "总投资多少?", "/latest", "/unanswered 1"]
    out = run_console(tmp_path, corpus, data_dir, "\n".join(lines) + "\n").stdout
    assert "按上文理解为:武威市政协2023年落地了几个项目?" in out
    assert out.count("按上文理解为") == 1  # not after /new
    assert "原文 1" not in out and "→ /source 1" in out  # /latest's buttons as commands
    assert "近 1 天没有确切答案的问题" in out


def test_a_slow_start_says_why_once_and_a_fast_one_says_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """The first start after an install compiles the query kernel for about 15 s: the console says
    so instead of sitting silent, and says nothing when opening is quick."""
    from bot.service import SLOW_START, ChatService

    said: list[str] = []

    def slow_open(cls: type, settings: object) -> tuple[str, str]:
        time.sleep(0.3)
        return "svc", "report"

    monkeypatch.setattr(ChatService, "open", classmethod(slow_open))
    assert ChatService.open_saying(None, said.append, after=0.05) == ("svc", "report")  # type: ignore[arg-type]
    assert said == [SLOW_START]
    said.clear()
    monkeypatch.setattr(ChatService, "open", classmethod(lambda cls, settings: ("svc", "report")))
    ChatService.open_saying(None, said.append, after=0.05)  # type: ignore[arg-type]
    time.sleep(0.1)
    assert said == []
