"""A deterministic, realistic benchmark corpus: news-like articles of 2–6 KB in many languages,
with a known share of exact and near duplicates.

Text model
----------
Each language has a source text: its paragraphs in the labelled language check set
(worker/quality/data/language_paragraphs.jsonl: 33 languages, news register), for English the seed
articles (seeds/*.txt) too. An article is built by copying short runs of 1–4 consecutive source
tokens (words; characters for Chinese, Japanese and Thai) from random positions, until a target
size drawn uniformly from 2–6 KB (UTF-8 bytes of the body) is reached. So:
- character and word statistics (language detection), capitalised names and multi-word places
  (entity tagging) are those of real news text;
- no run longer than 4 tokens is copied, so two unrelated articles share almost no word
  5-shingles (character 4-shingles), like real unrelated articles: MinHash LSH sees realistic
  candidate counts, not a corpus of near-duplicates of its own seeds.
Articles get paragraphs, a title, and some scraped page furniture ("Advertisement", "Read more:",
link lists) that the normalise stage removes.

Duplicates (ground truth kept per article, `kind` and `of`):
- `exact`: the body of an earlier original, re-scraped (extra spaces, boilerplate lines,
  different title and source): the same normalised text, so the same content hash;
- `near_rewrite`: an earlier original with ~3 % of its words replaced and a new title
  (word 5-shingle Jaccard ≈ 0.7–0.85);
- `near_truncated`: the first 55–75 % of an earlier original's paragraphs (containment ≈ 1).
Originals of duplicates are drawn from the 2,000 previous originals (syndication happens within
hours).

Deterministic: article i depends only on (seed, i) — `generate(n)` is a prefix of
`generate(m)` for n < m, in every process.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path

import numpy as np
import orjson

from worker.quality.data import language_check_set

ROOT = Path(__file__).resolve().parents[1]
SEEDS_DIR = ROOT / "seeds"
CHECK_SET = "worker/quality/data/language_paragraphs.jsonl"

DEFAULT_SEED = 20240611
CHAR_LANGS = {"zh-cn", "zh-tw", "ja", "th"}
SENTENCE_END = {"zh-cn": "。", "zh-tw": "。", "ja": "。", "th": " ", "hi": "।"}

# Share of articles per language. English dominates a Western aggregator; the rest spreads over
# the labelled languages (CJK/Thai included so the character-shingle path is exercised).
ENGLISH_SHARE = 0.50
HEAVY = {"fr": 0.06, "de": 0.06, "es": 0.06, "ru": 0.04, "pt": 0.03, "it": 0.03, "zh-cn": 0.03,
         "ja": 0.02, "ar": 0.02, "nl": 0.02, "pl": 0.02, "tr": 0.02}

EXACT_SHARE = 0.08
NEAR_REWRITE_SHARE = 0.05
NEAR_TRUNCATED_SHARE = 0.03
DUP_LOOKBACK = 2000
MIN_BYTES, MAX_BYTES = 2048, 6144

SOURCES = ["wire.example", "daily-herald.example", "metro-news.example", "globe-post.example",
           "courier.example", "tribune.example", "le-journal.example", "zeitung.example"]
BOILERPLATE = ["Advertisement", "Read more:", "Share this article", "Subscribe to our newsletter",
               "Follow us on Twitter", "Skip to content", "Print", "Email"]
LINK_LIST_HEADING = "Related stories"
BASE_TIME = datetime(2025, 6, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class BenchArticle:
    id: str
    lang: str  # the language its text was generated in (ground truth)
    kind: str  # original | exact | near_rewrite | near_truncated
    of: str | None  # the original's id for duplicates
    title: str
    body: str
    source: str
    published_at: str

    def payload(self) -> dict:
        """The `articles.raw` message value, as `ingest seed` writes it."""
        return {"id": self.id, "title": self.title, "body": self.body, "source": self.source,
                "url": f"https://{self.source}/a/{self.id}", "published_at": self.published_at,
                "ingested_at": self.published_at}

    def to_bytes(self) -> bytes:
        return orjson.dumps(self.payload())

    @property
    def size(self) -> int:
        return len(self.body.encode("utf-8"))


@dataclass
class _Lang:
    code: str
    tokens: list[str]  # source tokens (words, or characters for CHAR_LANGS)
    byte_len: np.ndarray  # UTF-8 bytes of each token (+1 for the joining space if spaced)
    spaced: bool


@dataclass
class SourceText:
    languages: dict[str, _Lang]
    weights: dict[str, float]
    origin: dict[str, str] = field(default_factory=dict)


def _seed_text() -> str:
    parts = []
    for path in sorted(SEEDS_DIR.glob("*.txt")):
        lines = [line for line in path.read_text(errors="replace").splitlines()
                 if line.strip() and not line.lower().startswith("original source:")]
        parts.append(" ".join(lines))
    return " ".join(parts)


@cache
def source_text() -> SourceText:
    texts: dict[str, str] = {}
    origin: dict[str, str] = {}
    for lang, paragraphs in language_check_set().items():
        sep = "" if lang in CHAR_LANGS - {"th"} else " "
        texts[lang] = " ".join(sep.join(p) for p in paragraphs)
        origin[lang] = CHECK_SET
    texts["en"] = (_seed_text() + " " + texts["en"]).strip()
    origin["en"] = f"seeds/*.txt + {CHECK_SET}"
    languages = {}
    for code, text in texts.items():
        if code in CHAR_LANGS:
            tokens = [c for c in re.sub(r"\s+", "", text)]
            byte_len = np.array([len(t.encode()) for t in tokens], dtype=np.int64)
            spaced = False
        else:
            tokens = text.split()
            byte_len = np.array([len(t.encode()) + 1 for t in tokens], dtype=np.int64)
            spaced = True
        languages[code] = _Lang(code, tokens, byte_len, spaced)
    others = [c for c in languages if c != "en"]
    weights = {"en": ENGLISH_SHARE}
    rest = 1.0 - ENGLISH_SHARE - sum(HEAVY.get(c, 0.0) for c in others)
    light = [c for c in others if c not in HEAVY]
    for c in others:
        weights[c] = HEAVY.get(c, rest / len(light))
    total = sum(weights.values())
    return SourceText(languages, {c: w / total for c, w in weights.items()}, origin)


def _runs(rng: np.random.Generator, lang: _Lang, target_bytes: int) -> list[str]:
    """Copy runs of 1–4 source tokens until `target_bytes` (UTF-8) is reached."""
    n = len(lang.tokens)
    avg = float(lang.byte_len.mean())
    want = int(target_bytes / avg / 2.2) + 16  # runs of ~2.2 tokens on average
    out: list[str] = []
    size = 0
    while size < target_bytes:
        starts = rng.integers(0, n, size=want)
        lengths = rng.choice(4, size=want, p=[0.30, 0.35, 0.25, 0.10]) + 1
        for s, k in zip(starts.tolist(), lengths.tolist()):
            e = min(s + k, n)
            out.extend(lang.tokens[s:e])
            size += int(lang.byte_len[s:e].sum())
            if size >= target_bytes:
                break
    return out


def _to_paragraphs(rng: np.random.Generator, lang: _Lang, tokens: list[str]) -> list[str]:
    """Cut a token stream into sentences and paragraphs."""
    paragraphs: list[str] = []
    sentences: list[str] = []
    i = 0
    end = SENTENCE_END.get(lang.code, ".")
    per_paragraph = int(rng.integers(2, 5))
    while i < len(tokens):
        k = int(rng.integers(12, 26)) if lang.spaced else int(rng.integers(25, 60))
        chunk = tokens[i:i + k]
        i += k
        if lang.spaced:
            sentence = " ".join(chunk).rstrip(",.;:")
            sentence = sentence[:1].upper() + sentence[1:]
            sentences.append(sentence + end)
        else:
            sentences.append("".join(chunk) + end.strip())
        if len(sentences) >= per_paragraph:
            paragraphs.append((" " if lang.spaced or lang.code == "th" else "").join(sentences))
            sentences = []
            per_paragraph = int(rng.integers(2, 5))
    if sentences:
        paragraphs.append((" " if lang.spaced or lang.code == "th" else "").join(sentences))
    return paragraphs


def _title(rng: np.random.Generator, lang: _Lang) -> str:
    tokens = _runs(rng, lang, int(rng.integers(40, 90)))
    text = (" " if lang.spaced else "").join(tokens).strip(" ,.;:")
    return text[:1].upper() + text[1:]


def _with_furniture(rng: np.random.Generator, paragraphs: list[str]) -> str:
    """Join paragraphs; sometimes add page furniture that normalise() removes."""
    out = list(paragraphs)
    if rng.random() < 0.25:
        out.insert(int(rng.integers(1, max(2, len(out)))), BOILERPLATE[int(rng.integers(len(BOILERPLATE)))])
    if rng.random() < 0.10:
        out.append("\n".join([LINK_LIST_HEADING, "Markets close higher", "Storm warning for the coast"]))
    return "\n\n".join(out)


@dataclass
class _State:
    originals: list[int] = field(default_factory=list)  # indices of original articles
    paragraphs: dict[int, list[str]] = field(default_factory=dict)
    articles: list[BenchArticle] = field(default_factory=list)


def _article_id(seed: int, i: int) -> str:
    return f"bench-{seed % 100000:05d}-{i:07d}"


def _make(seed: int, i: int, st: _State, src: SourceText, dup_share: float) -> BenchArticle:
    rng = np.random.default_rng([seed, i])
    source = SOURCES[int(rng.integers(len(SOURCES)))]
    published = (BASE_TIME + timedelta(seconds=5 * i)).isoformat().replace("+00:00", "Z")
    u = rng.random()
    scale = dup_share / (EXACT_SHARE + NEAR_REWRITE_SHARE + NEAR_TRUNCATED_SHARE)
    if st.originals and u < dup_share:
        recent = st.originals[-DUP_LOOKBACK:]
        j = recent[int(rng.integers(len(recent)))]
        original = st.articles[j]
        paragraphs = st.paragraphs[j]
        lang = src.languages[original.lang]
        if u < EXACT_SHARE * scale:
            kind = "exact"
            # Re-scraped: doubled spaces and different furniture; the normalised text is equal.
            body = _with_furniture(rng, [p.replace(" ", "  ", 2) for p in paragraphs])
            title = original.title if rng.random() < 0.5 else _title(rng, lang)
        elif u < (EXACT_SHARE + NEAR_REWRITE_SHARE) * scale:
            kind = "near_rewrite"
            title = _title(rng, lang)
            body = _with_furniture(rng, _rewrite(rng, lang, paragraphs, 0.03))
        else:
            kind = "near_truncated"
            keep = max(1, int(round(len(paragraphs) * rng.uniform(0.55, 0.75))))
            title = original.title
            body = _with_furniture(rng, paragraphs[:keep])
        return BenchArticle(_article_id(seed, i), original.lang, kind, original.id, title, body,
                            source, published)
    codes = list(src.weights)
    code = codes[int(rng.choice(len(codes), p=np.array([src.weights[c] for c in codes])))]
    lang = src.languages[code]
    target = int(rng.integers(MIN_BYTES, MAX_BYTES + 1))
    paragraphs = _to_paragraphs(rng, lang, _runs(rng, lang, int(target * 0.97)))
    st.paragraphs[i] = paragraphs
    st.originals.append(i)
    return BenchArticle(_article_id(seed, i), code, "original", None, _title(rng, lang),
                        _with_furniture(rng, paragraphs), source, published)


def _rewrite(rng: np.random.Generator, lang: _Lang, paragraphs: list[str], share: float) -> list[str]:
    out = []
    for p in paragraphs:
        if lang.spaced:
            words = p.split(" ")
            for k in np.flatnonzero(rng.random(len(words)) < share).tolist():
                words[k] = lang.tokens[int(rng.integers(len(lang.tokens)))]
            out.append(" ".join(words))
        else:
            chars = list(p)
            for k in np.flatnonzero(rng.random(len(chars)) < share / 2).tolist():
                chars[k] = lang.tokens[int(rng.integers(len(lang.tokens)))]
            out.append("".join(chars))
    return out


def generate(n: int, seed: int = DEFAULT_SEED, dup_share: float | None = None) -> list[BenchArticle]:
    """`n` articles; `dup_share` (default 16 %) of them duplicates of earlier ones."""
    share = EXACT_SHARE + NEAR_REWRITE_SHARE + NEAR_TRUNCATED_SHARE if dup_share is None else dup_share
    src = source_text()
    st = _State()
    for i in range(n):
        st.articles.append(_make(seed, i, st, src, share))
    return st.articles


def describe(articles: list[BenchArticle]) -> dict:
    """Corpus statistics for the results file."""
    from collections import Counter

    sizes = np.array([a.size for a in articles])
    kinds = Counter(a.kind for a in articles)
    langs = Counter(a.lang for a in articles)
    src = source_text()
    return {
        "articles": len(articles),
        "body_bytes": {"min": int(sizes.min()), "p50": int(np.median(sizes)), "mean": round(float(sizes.mean())),
                       "max": int(sizes.max())},
        "kinds": dict(kinds),
        "duplicate_share": round(1 - kinds["original"] / len(articles), 4),
        "languages": len(langs),
        "language_shares": {k: round(v / len(articles), 4) for k, v in langs.most_common()},
        "text_sources": sorted(set(src.origin.values())),
    }


if __name__ == "__main__":  # a peek: python -m bench.corpus [N]
    import sys
    import time

    count = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    t0 = time.perf_counter()
    corpus = generate(count)
    print(f"{count} articles in {time.perf_counter() - t0:.2f}s")
    print(orjson.dumps(describe(corpus), option=orjson.OPT_INDENT_2).decode())
    for a in corpus[:3]:
        print("---", a.id, a.lang, a.kind, a.size, "\n", a.title, "\n", a.body[:400])
