"""Tokenizer: domain words survive segmentation, text is normalised, question words are dropped."""

from __future__ import annotations

import random
import shutil
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest

from retrieval.query import _to_simplified, analyze
from retrieval.tokenizer import match_form, query_words, query_words_and_tokens, tokenize, tokenizer_fingerprint


@pytest.mark.parametrize("word", ["三抓三促", "嘉峪关市政协", "肃北县", "协商议事室", "委员工作站", "阿克塞县"])
def test_domain_words_are_single_tokens(word: str) -> None:
    assert word in tokenize(f"近日,{word}开展了相关工作。")


def test_full_width_and_upper_case_are_normalised() -> None:
    assert tokenize("２０２３年ＡＢＣ") == tokenize("2023年abc")


def test_punctuation_and_function_words_are_dropped() -> None:
    tokens = tokenize("“三抓三促”行动,的、和、与。")
    assert tokens == ["三抓三促", "行动"]


@pytest.mark.parametrize(
    ("question", "absent"),
    [
        ("酒泉市政协2023年落地了几个项目?", {"几个", "几", "了", "?"}),
        ("岷县政协党组书记、主席是谁", {"是谁", "谁"}),
        ("两当县政协调研去了哪几所学校?", {"几所", "哪"}),
        ("定西市政协主席叫什么名字?", {"什么", "叫", "名字"}),
    ],
)
def test_question_words_are_not_query_terms(question: str, absent: set[str]) -> None:
    assert not absent & set(analyze(question).tokens)


def test_question_kinds() -> None:
    assert analyze("酒泉市政协2023年落地了几个项目").kind == "count"
    assert analyze("武威市政协2023年开展了多少场次协商议事活动").unit == "场次"
    assert analyze("陇西县政协主席是谁").kind == "who"
    assert analyze("张掖市政协培训班在哪里开班").kind == "where"
    assert analyze("环县政协走访了哪些企业").kind == "which"
    assert analyze("座谈会是哪天召开的").kind == "when"


def test_places_and_years_are_recognised_as_entities() -> None:
    q = analyze("酒泉市政协2023年落地了几个项目")
    assert q.places == {"酒泉"} and q.years == {"2023"}
    assert analyze("成都市政协建了多少个委员工作站").places == {"成都"}
    assert analyze("武威市政协跟哪些高校合作办班").places == {"武威"}, "合作 is a word here, not 合作市"


def test_tokenizer_fingerprint_is_the_same_in_every_process_and_follows_the_dictionary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Cached tokens are trusted by this value: equal across processes (workers, restarts), and
    different whenever a dictionary file or the rules' version changes."""
    from retrieval import tokenizer

    fp = tokenizer_fingerprint()
    code = "from retrieval.tokenizer import tokenizer_fingerprint as f; print(f())"
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert other.stdout.strip() == fp and len(fp) == 16
    compute = tokenizer.tokenizer_fingerprint.__wrapped__  # uncached
    data = tmp_path / "data"
    shutil.copytree(str(tokenizer._DATA), data)
    monkeypatch.setattr(tokenizer, "_DATA", data)
    assert compute() == fp
    with (data / "domain.txt").open("a", encoding="utf-8") as f:
        f.write("协商新词\n")
    assert compute() != fp
    monkeypatch.undo()  # the shipped dictionary again
    monkeypatch.setattr(tokenizer, "TOKENIZER_VERSION", tokenizer.TOKENIZER_VERSION + "+")
    assert compute() != fp


def test_prepared_dictionary_cache_tokenizes_exactly_like_a_fresh_load(
    tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    from retrieval import tokenizer

    text = "酒泉市政协2023年已落地4个项目,嘉峪关市政协建立协商议事室,肃北县政协开展“三抓三促”行动。"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    tokenizer.segmenter.cache_clear()
    try:
        fresh = tokenize(text)  # builds from jieba's dictionary, then keeps the prepared copy
        path = tokenizer._prepared_path()
        assert path.exists()
        tokenizer.segmenter.cache_clear()
        assert tokenize(text) == fresh  # loaded from the prepared copy
        if os.getuid() == 0:  # a cache file owned by someone else is never unpickled
            os.chown(path, 12345, -1)
            tokenizer.segmenter.cache_clear()
            assert not tokenizer._load_prepared(tokenizer.jieba.Tokenizer())
            assert tokenize(text) == fresh
    finally:
        tokenizer.segmenter.cache_clear()


def test_the_match_form_is_nfkc_and_lower_case() -> None:
    """match_form takes NFC of NFKD for speed: the same as NFKC for every character on its own and
    next to what composes with it (jamo, combining marks, voiced kana, compatibility forms)."""
    chars = [chr(c) for c in range(0x30000) if not 0xD800 <= c <= 0xDFFF]
    assert [match_form(c) for c in chars] == [unicodedata.normalize("NFKC", c).lower() for c in chars]
    rng = random.Random(12)
    nasty = [*map(chr, [*range(0x300, 0x370), *range(0x1100, 0x1200), 0xAC00, 0xAC01, *range(0xFF00, 0xFFEF)])]
    nasty += [*"政协ΣσςİAa…\u3000\u3099\u309a\u0cd5\u0b3e\u212b\uf900"]
    for _ in range(20000):
        text = "".join(rng.choice(nasty) for _ in range(rng.randint(1, 10)))
        assert match_form(text) == unicodedata.normalize("NFKC", text).lower(), text


def test_one_cut_gives_the_question_words_and_the_search_tokens() -> None:
    """analyze reads a question both ways from one jieba cut: the same lists as the two cuts."""
    texts = [
        "酒泉市政协2023年落地了几个项目?",
        "中华人民共和国全国政协十四届二次会议在北京召开",
        "ＧＤＰ 增长 6.5%, 乡村振兴",
    ]
    texts += ["甘肃省政协委员工作站建设情况", "", "  ", "嘉峪关市政协主席是谁"]
    for text in texts:
        assert query_words_and_tokens(text) == (query_words(text), tokenize(text)), text


def test_traditional_characters_are_simplified_and_a_simplified_question_is_left_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every entry of the t2s dictionaries, in a question, converts as OpenCC converts it; a
    question OpenCC would leave as it is never reaches its (slow) converter."""
    simplifier = _to_simplified()
    cc = simplifier._cc
    keys = [key for group in cc._dict_chain_data for _, _, entries in group for key in entries]
    assert len(keys) > 4000
    for key in keys:
        text = f"政协{key}会议"
        assert simplifier.convert(text) == cc.convert(text), key
    assert analyze("甘肅省政協主席是誰").text == analyze("甘肃省政协主席是谁").text
    monkeypatch.setattr(cc, "convert", lambda text: pytest.fail(f"converted {text}"))
    assert simplifier.convert("酒泉市政协2023年落地了几个项目?") == "酒泉市政协2023年落地了几个项目?"
