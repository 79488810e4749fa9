"""Pipeline stage: text → tokens, the same way for paragraphs and for questions.

jieba with a domain dictionary shipped in retrieval/data (Gansu place names, CPPCC
vocabulary), NFKC + lower-case normalisation, punctuation and stop words dropped.
Words come with their search-engine sub-words (`cut_for_search`), so "武威市政协" also
matches "武威" and "政协" (DESIGN.md §3b: word + sub-word tokens is the well-supported
recipe for Chinese recall).
"""

from __future__ import annotations

import gc
import hashlib
import logging
import os
import pickle
import re
import tempfile
import threading
import unicodedata
from collections.abc import Iterable
from functools import cache
from importlib import resources
from pathlib import Path

import jieba

TOKENIZER_VERSION = "3"  # bump when these rules, the parse or the indexed context change: tokens are recomputed

_DATA = resources.files("retrieval") / "data"
_PUNCT_OR_SPACE = re.compile(r"^[\W_]+$", re.UNICODE)
_lock = threading.Lock()

jieba.setLogLevel(logging.WARNING)


def _lines(name: str) -> list[str]:
    text = (_DATA / name).read_text(encoding="utf-8")
    return [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]


@cache
def places() -> dict[str, str]:
    """Place word → canonical short name (武威市政协 → 武威), for entity checks on answers."""
    out: dict[str, str] = {}
    for ln in _lines("places.txt"):
        word, _pos, short = ln.split()
        out[word] = short
    return out


@cache
def stopwords() -> frozenset[str]:
    return frozenset(_lines("stopwords.txt"))


@cache
def tokenizer_fingerprint() -> str:
    """Changes whenever tokens could: dictionary files, stop words, rules, jieba's version. Cached
    tokens, snapshots and the prepared dictionary are keyed by it."""
    h = hashlib.sha256(TOKENIZER_VERSION.encode())
    h.update(jieba.__version__.encode())
    for name in ("places.txt", "domain.txt", "stopwords.txt"):
        h.update((_DATA / name).read_bytes())
    return h.hexdigest()[:16]


@cache
def segmenter() -> jieba.Tokenizer:
    """One jieba instance per process, loaded once, with the domain dictionary applied before any use.

    Start-up time matters (process start to first answer): jieba's own marshal cache takes about
    1 s to load, a pickle of the same dictionary (domain words included) about 0.3 s, so the
    prepared dictionary is kept in a per-user cache keyed by the tokenizer fingerprint.
    """
    with _lock:
        tk = jieba.Tokenizer()
        tk.tmp_dir = tempfile.gettempdir()
        if _load_prepared(tk):
            return tk
        tk.initialize()
        for word in places():
            tk.add_word(word, freq=2000, tag="ns")
        for word in _lines("domain.txt"):
            tk.add_word(word, freq=2000)
        _save_prepared(tk)
        return tk


def _prepared_path() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "zxbot"
    return base / f"jieba-{tokenizer_fingerprint()}.pickle"


def _load_prepared(tk: jieba.Tokenizer) -> bool:
    path = _prepared_path()
    try:
        if path.stat().st_uid != os.getuid():  # never unpickle a file someone else could have written
            return False
        gc.disable()  # a 500k-entry dict: the collector would walk it repeatedly while it grows
        try:
            with path.open("rb") as f:
                tk.FREQ, tk.total = pickle.load(f)
        finally:
            gc.enable()
    except (OSError, pickle.UnpicklingError, EOFError, ValueError, TypeError):
        return False
    tk.initialized = True
    return True


def _save_prepared(tk: jieba.Tokenizer) -> None:
    path = _prepared_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}")
        with tmp.open("wb") as f:
            pickle.dump((tk.FREQ, tk.total), f, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, path)
    except OSError as exc:  # a read-only home: start-up is slower, nothing else changes
        logging.getLogger(__name__).info("could not keep the prepared dictionary (%s)", exc)


def match_form(text: str) -> str:
    """The form text is matched in (tokens, terms, snippets): NFKC (full-width → half-width,
    compatibility forms folded) and lower case. Not for display: parse.page_text keeps what is shown.

    NFKC is by definition the canonical composition of the compatibility decomposition, that is
    NFC of NFKD: the same string, 5-7 times faster on this paper's text. CPython's NFKC composes
    Chinese text at ~130 ns a character (a linear table search per character) as soon as one
    full-width comma or "…" fails its quick check; NFC of the decomposed text passes its own quick
    check and is returned as it is. Most paragraphs and headings are NFKC already: the quick check
    says so in ~1 ns a character (it answers "maybe" only for combining marks), and only lower case
    is left to do."""
    if unicodedata.is_normalized("NFKC", text):
        return text.lower()
    return unicodedata.normalize("NFC", unicodedata.normalize("NFKD", text)).lower()


def _kept(words: Iterable[str]) -> list[str]:
    """What counts of jieba's words: stripped, no empty ones, no punctuation, no stop words."""
    stop = stopwords()
    stripped = [w.strip() for w in words]
    return [w for w in stripped if w and w not in stop and not _PUNCT_OR_SPACE.match(w)]


def tokenize(text: str) -> list[str]:
    """Index/query tokens: words plus their sub-words, no punctuation, no stop words."""
    return _kept(segmenter().cut_for_search(match_form(text), HMM=True))


def query_words(text: str) -> list[str]:
    """The question's words without their sub-words: one weight per concept when choosing sentences."""
    return _kept(segmenter().cut(match_form(text), HMM=True))


def query_words_and_tokens(text: str) -> tuple[list[str], list[str]]:
    """(query_words(text), tokenize(text)) from one jieba cut: a question is read both ways, and
    cut_for_search is that cut with the dictionary's 2- and 3-character words inside each longer
    word before it (jieba 0.42; checked against both in the tests)."""
    tk = segmenter()
    cut = list(tk.cut(match_form(text), HMM=True))
    searched: list[str] = []
    for w in cut:
        inside = [w[i : i + 2] for i in range(len(w) - 1)] if len(w) > 2 else []
        inside += [w[i : i + 3] for i in range(len(w) - 2)] if len(w) > 3 else []
        searched += [g for g in inside if tk.FREQ.get(g)]
        searched.append(w)
    return _kept(cut), _kept(searched)


def words(text: str) -> list[str]:
    """Plain segmentation (no sub-words, punctuation kept): for locating terms inside snippets."""
    return list(segmenter().cut(text, HMM=False))
