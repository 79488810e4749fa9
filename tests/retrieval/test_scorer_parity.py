"""Ranking parity: BM25Scorer must rank exactly as rank_bm25.BM25Okapi on the same tokens."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
from rank_bm25 import BM25Okapi

from retrieval import scorer as scorer_module
from retrieval.scorer import BM25Scorer


def _corpus(n_docs: int, seed: int) -> list[list[str]]:
    """Zipf-distributed vocabulary (a few terms in most paragraphs, a long tail), some duplicates for ties."""
    rng = random.Random(seed)
    vocab = [f"w{i}" for i in range(1500)]
    weights = [1.0 / (i + 1) ** 1.1 for i in range(len(vocab))]
    docs: list[list[str]] = []
    for _ in range(n_docs):
        if docs and rng.random() < 0.05:
            docs.append(list(rng.choice(docs)))  # exact duplicate: equal scores, lower id must win
            continue
        length = rng.choice([0, 1, 3]) if rng.random() < 0.02 else rng.randint(5, 120)
        docs.append(rng.choices(vocab, weights, k=length))
    return docs


def _queries(docs: list[list[str]], n: int, seed: int) -> list[list[str]]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        doc = rng.choice([d for d in docs if d] or [["w0"]])
        q = rng.sample(doc, min(len(doc), rng.randint(1, 6)))
        if rng.random() < 0.3:
            q.append(rng.choice(q))  # duplicated query token counts twice
        if rng.random() < 0.2:
            q.append("未知词")
        out.append(q)
    return out


def _reference_top(bm25: BM25Okapi, query: list[str], k: int) -> list[tuple[int, float]]:
    scores = np.asarray(bm25.get_scores(query))
    order = np.argsort(-scores, kind="stable")[:k]
    return [(int(i), float(scores[i])) for i in order if scores[i] > 0]


def _assert_same(got: list[tuple[int, float]], want: list[tuple[int, float]]) -> None:
    assert [d for d, _ in got] == [d for d, _ in want]
    assert [s for _, s in got] == [s for _, s in want]  # bit for bit: rank-bm25's operations, in its order


@pytest.fixture(autouse=True, params=["eager", "maxscore"])
def strategy(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test ranks both ways: the small index's exact weights (`eager_top_k`), and MaxScore as an
    index above EAGER_DOCS paragraphs ranks."""
    if request.param == "maxscore":
        monkeypatch.setattr(scorer_module, "EAGER_DOCS", 0)
    return str(request.param)


@pytest.fixture(scope="module")
def corpus() -> list[list[str]]:
    return _corpus(3000, seed=7)


@pytest.fixture(scope="module")
def reference(corpus: list[list[str]]) -> BM25Okapi:
    return BM25Okapi(corpus)


@pytest.mark.parametrize("k", [1, 10, 50, 3000])
def test_top_k_matches_rank_bm25_on_200_random_queries(corpus: list[list[str]], reference: BM25Okapi, k: int) -> None:
    """Same ids and bit-identical scores, up to k = every paragraph; a second pass over the same
    questions (the kernel reuses its work arrays) must not differ."""
    ours = BM25Scorer(corpus)
    queries = _queries(corpus, 200, seed=11)
    for _ in range(2):
        for q in queries:
            _assert_same(ours.top_k(q, k), _reference_top(reference, q, k))


def test_long_questions_of_frequent_terms(corpus: list[list[str]], reference: BM25Okapi) -> None:
    """Questions made only of the most frequent terms (little pruning), and long ones mixing rare and
    frequent terms (pruning after the rare ones), with duplicates."""
    ours = BM25Scorer(corpus)
    rng = random.Random(5)
    frequent = [f"w{i}" for i in range(12)]
    rare = [f"w{i}" for i in range(400, 1500)]
    queries = [rng.sample(frequent, rng.randint(1, 8)) for _ in range(40)]
    queries += [rng.sample(frequent, 6) + rng.sample(rare, 3) + rng.sample(frequent, 2) for _ in range(40)]
    for q in queries:
        for k in (1, 10, 100):
            _assert_same(ours.top_k(q, k), _reference_top(reference, q, k))


def test_get_scores_equal_everywhere(corpus: list[list[str]], reference: BM25Okapi) -> None:
    ours = BM25Scorer(corpus)
    for q in _queries(corpus, 30, seed=3):
        np.testing.assert_array_equal(ours.get_scores(q), np.asarray(reference.get_scores(q)))


def test_idf_and_average_match(corpus: list[list[str]], reference: BM25Okapi) -> None:
    ours = BM25Scorer(corpus)
    assert ours.average_idf == reference.average_idf
    assert ours.avgdl == reference.avgdl
    for term, idf in reference.idf.items():
        assert ours.idf(term) == idf


def test_added_paragraphs_rank_as_a_rebuild(corpus: list[list[str]], tmp_path: Path) -> None:
    base, extra = corpus[:2500], corpus[2500:]
    grown = BM25Scorer(base).with_added(extra[:200]).with_added(extra[200:]).with_added([["新词", "w1"]])
    full = [*corpus, ["新词", "w1"]]
    reference = BM25Okapi(full)
    assert grown.size == len(full) and grown.segments == 4
    queries = [*_queries(full, 60, seed=5), ["新词"], ["新词", "w1", "w2"]]
    for q in queries:
        _assert_same(grown.top_k(q, 10), _reference_top(reference, q, 10))
    for q in queries[:20]:
        np.testing.assert_array_equal(grown.get_scores(q), np.asarray(reference.get_scores(q)))


def test_save_load_round_trip_and_incremental_save(corpus: list[list[str]], tmp_path: Path) -> None:
    first = BM25Scorer(corpus[:2000])
    first.save(tmp_path)
    grown = BM25Scorer.load(tmp_path).with_added(corpus[2000:])
    grown.save(tmp_path)  # writes only the new segment; the base folder stays as it was
    assert len(list(tmp_path.glob("segment-*"))) == 2
    for mmap in (True, False):
        loaded = BM25Scorer.load(tmp_path, mmap=mmap)
        assert loaded.size == len(corpus) and loaded.vocab_size == grown.vocab_size
        for q in _queries(corpus, 20, seed=9):
            np.testing.assert_array_equal(loaded.get_scores(q), grown.get_scores(q))
            assert loaded.top_k(q, 5) == grown.top_k(q, 5)


def test_allowed_mask_filters_without_changing_scores(corpus: list[list[str]], reference: BM25Okapi) -> None:
    ours = BM25Scorer(corpus)
    allowed = np.zeros(len(corpus), dtype=bool)
    allowed[1000:1500] = True
    for q in _queries(corpus, 20, seed=13):
        scores = np.asarray(reference.get_scores(q))
        docs = np.flatnonzero(allowed & (scores > 0))
        want = sorted(((int(d), float(scores[d])) for d in docs), key=lambda x: (-x[1], x[0]))[:10]
        _assert_same(ours.top_k(q, 10, allowed=allowed), want)


def test_tiny_corpus_floor_goes_negative() -> None:
    # Every term is in more than half the paragraphs: all idf negative, so the floor
    # epsilon * average_idf is negative too, and all scores are ≤ 0.
    docs = [["a", "b"], ["a", "b"], ["a"]]
    ref = BM25Okapi(docs)
    ours = BM25Scorer(docs)
    assert ref.average_idf < 0
    assert ours.idf("a") == ref.idf["a"] < 0
    np.testing.assert_array_equal(ours.get_scores(["a", "b"]), ref.get_scores(["a", "b"]))
    assert ours.top_k(["a", "b"], 3) == []


def test_term_in_exactly_half_scores_zero() -> None:
    # "w" (in one of four) keeps the average idf positive, so a floor that also caught idf == 0
    # (rank-bm25 floors only idf < 0) would give "x" eps * average > 0 and show here.
    docs = [["x", "y"], ["x"], ["z", "w"], ["z", "y"]]
    ref = BM25Okapi(docs)
    ours = BM25Scorer(docs)
    assert ref.average_idf > 0
    assert ref.idf["x"] == 0.0 and ours.idf("x") == 0.0
    np.testing.assert_array_equal(ours.get_scores(["x"]), np.zeros(4))
    assert ours.top_k(["x"], 4) == []
    np.testing.assert_array_equal(ours.get_scores(["x", "y", "z"]), ref.get_scores(["x", "y", "z"]))


def test_unknown_duplicated_and_empty_queries(corpus: list[list[str]], reference: BM25Okapi) -> None:
    ours = BM25Scorer(corpus)
    assert ours.idf("不存在") is None
    np.testing.assert_array_equal(ours.get_scores(["不存在"]), np.zeros(len(corpus)))
    assert ours.top_k(["不存在"], 10) == []
    assert ours.top_k([], 10) == []
    np.testing.assert_array_equal(ours.get_scores([]), np.zeros(len(corpus)))
    rare = "w900"
    once, twice = ours.get_scores([rare]), ours.get_scores([rare, rare])
    np.testing.assert_array_equal(twice, np.asarray(reference.get_scores([rare, rare])))
    np.testing.assert_allclose(twice, 2 * once)
    assert ours.top_k([rare], 0) == []


def test_empty_corpus_refused() -> None:
    with pytest.raises(ValueError):
        BM25Scorer([])


def test_from_term_ids_matches_token_constructor(corpus: list[list[str]]) -> None:
    vocab: dict[str, int] = {}
    ids = [vocab.setdefault(t, len(vocab)) for doc in corpus for t in doc]
    lens = [len(d) for d in corpus]
    a = BM25Scorer.from_term_ids(np.array(ids), np.array(lens), list(vocab))
    b = BM25Scorer(corpus)
    for q in _queries(corpus, 10, seed=1):
        np.testing.assert_array_equal(a.get_scores(q), b.get_scores(q))


def test_an_added_paragraph_beyond_the_frequent_terms_bound_still_ranks() -> None:
    """A frequent term's bound comes from its largest part: one added paragraph that weighs more than
    any earlier one (the term many times in few words) must still reach the top, even behind a rare
    term whose paragraph would otherwise end the search early."""
    base = [["f", *(f"x{i}_{j}" for j in range(10))] for i in range(12000)]  # long enough to be pruned
    base[0].append("r")
    grown = BM25Scorer(base).with_added([["f"] * 20])
    full = [*base, ["f"] * 20]
    query = ["r", "f", "f", "f", "f"]
    want = _reference_top(BM25Okapi(full), query, 1)
    assert want[0][0] == 12000  # the added paragraph
    _assert_same(grown.top_k(query, 1), want)


def test_a_tf_past_one_byte_ranks_as_rank_bm25(corpus: list[list[str]]) -> None:
    """tf is kept in one byte while every tf fits: a paragraph repeating a word 300 times, built in or
    added later (the base then in one byte, the added ones in two), still ranks exactly."""
    long = ["w3"] * 300 + ["w900"]
    for ours, docs in (
        (BM25Scorer([*corpus[:500], long]), [*corpus[:500], long]),
        (BM25Scorer(corpus[:500]).with_added([long]), [*corpus[:500], long]),
    ):
        reference = BM25Okapi(docs)
        for q in [["w3"], ["w3", "w900"], *_queries(docs, 20, seed=4)]:
            _assert_same(ours.top_k(q, 10), _reference_top(reference, q, 10))


@pytest.fixture(scope="module")
def large() -> list[list[str]]:
    """Large enough that the halves prune: frequent terms get tf parts and θ is estimated early."""
    return _corpus(12000, seed=3)


@pytest.mark.parametrize("grown", [False, True], ids=["one segment", "added segment across the middle"])
def test_two_halves_on_two_threads_rank_exactly_as_one_call(
    large: list[list[str]], monkeypatch: pytest.MonkeyPatch, grown: bool
) -> None:
    """`halves=True` (the ask's ranking in a large index) ranks the paragraphs below and above the
    middle on two threads: ids, scores and ties as rank-bm25's, with and without a mask that keeps
    paragraphs on both sides."""
    monkeypatch.setattr(scorer_module, "HALVES_MIN", 0)
    monkeypatch.setattr(scorer_module, "EAGER_DOCS", 0)  # halves are MaxScore's
    ours = BM25Scorer(large[:4000]).with_added(large[4000:]) if grown else BM25Scorer(large)
    reference = BM25Okapi(large)
    allowed = np.zeros(len(large), dtype=bool)
    allowed[4500:7500] = True
    rng = random.Random(17)
    frequent = [f"w{i}" for i in range(10)]
    queries = [rng.sample(frequent, rng.randint(2, 7)) for _ in range(30)] + _queries(large, 40, seed=21)
    for q in queries:
        scores = np.asarray(reference.get_scores(q))
        ranked = sorted(((int(d), float(scores[d])) for d in np.flatnonzero(scores > 0)), key=lambda x: (-x[1], x[0]))
        for k in (1, 10, 50):
            _assert_same(ours.top_k(q, k, halves=True), ranked[:k])
        _assert_same(ours.top_k(q, 10, allowed=allowed, halves=True), [x for x in ranked if allowed[x[0]]][:10])
