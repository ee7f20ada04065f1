"""Labelled near-duplicate pairs, generated deterministically from worker/quality/data/articles.jsonl.

Positives (the second article is a copy of the first, as scrapers and syndication produce them):

    exact            the same title and body under another id
    whitespace       spaces doubled, tabs, NBSP and thin spaces, CRLF, blank lines, trailing spaces
    unicode          NFD-decomposed accents, full-width digits and Latin letters, typographic
                     quotes swapped with straight ones, ideographic spaces
    boilerplate      page furniture added: "Advertisement", "Read more:", share/subscribe lines,
                     a RELATED STORIES link list, an "Original Source:" trailer, a line in the
                     article's own language ("Werbung", "広告", ...)
    headline         a different headline over the same body
    paragraph_added  a paragraph from another article of the same language appended or inserted
    paragraph_removed one paragraph (not the first) dropped
    truncated_70     the first 70 % of the body (cut at a word or, unspaced, a character)
    truncated_50     the first 50 % of the body: a duplicate by containment
    light_edits      ~4 % of the words (or characters, for Chinese/Japanese) substituted,
                     deleted or duplicated, plus one number reformatted

Hard negatives (different articles, as the same newsroom's feed also carries them):

    same_story       another outlet's article on the same event in the same language
                     (the seeds 000/001/002/004, rewrites written for the set)
    translation      the same event in another language
    same_topic       the same subject, a different event, same language (two ECB rate cuts,
                     two Putin-Kim meetings, the Murmansk remarks vs the Black Sea deal)
    unrelated        a different subject in the same language
    shared_background a follow-up on another event of the same subject that recycles this
                     article's last paragraph as background (new lead, old context)

Stress positives (reported apart, not in the bars): wire-style reprints with heavier noise —
`noise` of the words edited, boilerplate added and the tail cut — to see how low the Jaccard of
a real reprint can go before the detector loses it (NEWS-COPY's reprints average ~30 %).

All randomness comes from `random.Random(f"{seed}:{article id}:{kind}")`: the same seed gives
the same pairs in every process and on every platform.
"""

from __future__ import annotations

import random
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass

from worker.quality.data import LabelledArticle, articles

DEFAULT_SEED = 20250328
POSITIVE_KINDS = ("exact", "whitespace", "unicode", "boilerplate", "headline", "paragraph_added",
                  "paragraph_removed", "truncated_70", "truncated_50", "light_edits")
NEGATIVE_KINDS = ("same_story", "translation", "same_topic", "unrelated", "shared_background")
STRESS_NOISE = (0.05, 0.10, 0.15, 0.20, 0.25, 0.30, 0.40)
UNSPACED = {"zh-cn", "zh-tw", "ja"}


@dataclass(frozen=True, slots=True)
class Doc:
    id: str
    title: str
    body: str
    lang: str  # the article's labelled language


@dataclass(frozen=True, slots=True)
class Pair:
    kind: str
    label: bool  # True: the second is a duplicate of the first
    first: Doc
    second: Doc
    lang: str  # language of the first article
    noise: float = 0.0  # stress pairs only

    @property
    def id(self) -> str:
        return f"{self.kind}:{self.first.id}:{self.second.id}"


def _doc(a: LabelledArticle, suffix: str = "", title: str | None = None, body: str | None = None) -> Doc:
    return Doc(a.id + suffix, a.title if title is None else title, a.body if body is None else body, a.lang)


def _paragraphs(body: str) -> list[str]:
    return [p for p in re.split(r"\n\s*\n|\n", body) if p.strip()]


# -- positive transformations ---------------------------------------------------------------------


def whitespace_variant(text: str, rng: random.Random) -> str:
    spaces = [" ", "  ", "\t", "\u00a0", "\u2009", " \u00a0"]
    out = re.sub(" ", lambda _: rng.choice(spaces) if rng.random() < 0.15 else " ", text)
    out = out.replace("\n", "\r\n" if rng.random() < 0.5 else "\n\n\n")
    return "\n  " + "\n".join(line + (" " * rng.randint(0, 3)) for line in out.split("\n")) + "\n\n"


_FULLWIDTH = {chr(c): chr(c + 0xFEE0) for c in range(0x21, 0x7F)}


def unicode_variant(text: str, rng: random.Random) -> str:
    text = unicodedata.normalize("NFD", text)  # é -> e + combining acute (NFKC folds it back)
    text = text.replace("\u201c", '"').replace("\u201d", '"').replace("\u2019", "'") \
        if rng.random() < 0.5 else text.replace('"', "\u201d").replace("'", "\u2019")
    # full-width digits and Latin letters in some words (common in CJK-sourced copies)
    words = text.split(" ")
    for i in range(len(words)):
        if rng.random() < 0.08:
            words[i] = "".join(_FULLWIDTH.get(ch, ch) for ch in words[i])
    text = " ".join(words)
    return text.replace(" ", "\u3000", 3) if rng.random() < 0.5 else text


_FURNITURE = ["Advertisement", "Read more:", "Share this article", "Subscribe to our newsletter",
              "Follow us on Twitter", "Skip to main content", "Post Comment", "Previous Post Next Post",
              "Sign up for our newsletter", "Back to top"]
_LOCAL = {"de": "Werbung", "fr": "Publicité", "es": "Publicidad", "it": "Pubblicità",
          "ru": "Реклама", "zh-cn": "广告", "ja": "広告", "ko": "광고", "en": "Advertisement"}


def boilerplate_variant(a: LabelledArticle, rng: random.Random) -> str:
    paras = _paragraphs(a.body)
    out: list[str] = [rng.choice(_FURNITURE[5:])]
    for i, p in enumerate(paras):
        out.append(p)
        if i == 0:
            out.append(rng.choice(_FURNITURE[:3]))
        if i == len(paras) // 2:
            out.append(_LOCAL.get(a.lang, "Advertisement"))
    out += ["RELATED STORIES", "Markets rally as oil prices fall", "Storm warning for the coast",
            "Original Source: www.example-news.com", rng.choice(_FURNITURE[3:6])]
    return "\n".join(out)


def truncate(body: str, share: float, lang: str) -> str:
    cut = int(len(body) * share)
    if lang in UNSPACED:
        return body[:cut].rstrip()
    space = body.rfind(" ", 0, cut)
    return body[:space if space > 0 else cut].rstrip()


def _edit_tokens(tokens: list[str], share: float, rng: random.Random, pool: list[str]) -> list[str]:
    out: list[str] = []
    for tok in tokens:
        r = rng.random()
        if r < share / 3:
            out.append(rng.choice(pool))  # substituted
        elif r < 2 * share / 3:
            continue  # deleted
        elif r < share:
            out += [tok, rng.choice(pool)]  # inserted
        else:
            out.append(tok)
    return out


def edit_text(body: str, share: float, lang: str, rng: random.Random) -> str:
    """Substitute, delete or insert about `share` of the words (characters when unspaced)."""
    if lang in UNSPACED:
        chars = list(body)
        pool = [c for c in chars if not c.isspace()]
        out = _edit_tokens(chars, share, rng, pool)
        return "".join(out)
    lines = body.split("\n")
    pool = body.split()
    return "\n".join(" ".join(_edit_tokens(line.split(" "), share, rng, pool)) if line else line
                     for line in lines)


def _reformat_number(text: str) -> str:
    m = re.search(r"(\d{1,3}),(\d{3})", text)
    if m:
        return text[:m.start()] + m.group(1) + m.group(2) + text[m.end():]
    return text


def _positive(a: LabelledArticle, kind: str, donors: list[LabelledArticle], rng: random.Random) -> Doc | None:
    suffix = f"~{kind}"
    paras = _paragraphs(a.body)
    if kind == "exact":
        return _doc(a, suffix)
    if kind == "whitespace":
        return _doc(a, suffix, title="  " + a.title + " ", body=whitespace_variant(a.body, rng))
    if kind == "unicode":
        return _doc(a, suffix, title=unicode_variant(a.title, rng), body=unicode_variant(a.body, rng))
    if kind == "boilerplate":
        return _doc(a, suffix, body=boilerplate_variant(a, rng))
    if kind == "headline":
        other = rng.choice(donors) if donors else a
        return _doc(a, suffix, title=other.title if other.title != a.title else a.title + " (updated)")
    if kind == "paragraph_added":
        donor_paras = [p for d in donors for p in _paragraphs(d.body)]
        if not donor_paras:
            return None
        extra = rng.choice(donor_paras)
        at = rng.randint(1, len(paras))
        return _doc(a, suffix, body="\n\n".join(paras[:at] + [extra] + paras[at:]))
    if kind == "paragraph_removed":
        if len(paras) < 3:
            return None
        drop = rng.randint(1, len(paras) - 1)
        return _doc(a, suffix, body="\n\n".join(paras[:drop] + paras[drop + 1:]))
    if kind == "truncated_70":
        return _doc(a, suffix, body=truncate(a.body, 0.7, a.lang))
    if kind == "truncated_50":
        return _doc(a, suffix, body=truncate(a.body, 0.5, a.lang))
    if kind == "light_edits":
        return _doc(a, suffix, body=_reformat_number(edit_text(a.body, 0.04, a.lang, rng)))
    raise ValueError(kind)


def stress_variant(a: LabelledArticle, noise: float, rng: random.Random) -> Doc:
    """A noisy wire reprint: `noise` of the tokens edited, furniture added, the tail cut."""
    body = edit_text(a.body, noise, a.lang, rng)
    body = truncate(body, 1.0 - noise / 2, a.lang)
    body = f"{rng.choice(_FURNITURE[5:])}\n{body}\n{rng.choice(_FURNITURE[:5])}"
    return _doc(a, f"~stress{int(noise * 100)}", body=body)


# -- the pair set ------------------------------------------------------------------------------------


def generate_pairs(seed: int = DEFAULT_SEED, corpus: tuple[LabelledArticle, ...] | None = None,
                   stress: bool = False) -> list[Pair]:
    corpus = corpus if corpus is not None else articles()
    pairs: list[Pair] = []
    for a in corpus:
        donors = [d for d in corpus if d.lang == a.lang and d.event != a.event]
        for kind in POSITIVE_KINDS:
            rng = random.Random(f"{seed}:{a.id}:{kind}")
            second = _positive(a, kind, donors, rng)
            if second is not None:
                pairs.append(Pair(kind, True, _doc(a), second, a.lang))
        if stress:
            for noise in STRESS_NOISE:
                rng = random.Random(f"{seed}:{a.id}:stress:{noise}")
                pairs.append(Pair("stress", True, _doc(a), stress_variant(a, noise, rng), a.lang, noise))
    for a in corpus:
        paras = _paragraphs(a.body)
        leads = [d for d in corpus if d.lang == a.lang and d.topic == a.topic and d.event != a.event
                 and len(_paragraphs(d.body)) >= 3]
        if len(paras) >= 3 and leads:
            d = random.Random(f"{seed}:{a.id}:shared_background").choice(leads)
            body = "\n\n".join(_paragraphs(d.body)[:2] + [paras[-1]])
            pairs.append(Pair("shared_background", False, _doc(a), _doc(d, f"~bg~{a.id}", body=body), a.lang))
    for i, a in enumerate(corpus):
        for b in corpus[i + 1:]:
            if a.event == b.event:
                kind = "same_story" if a.lang == b.lang else "translation"
            elif a.lang != b.lang:
                continue
            elif a.topic == b.topic:
                kind = "same_topic"
            else:
                kind = "unrelated"
            pairs.append(Pair(kind, False, _doc(a), _doc(b), a.lang))
    return pairs


def iter_kinds(pairs: list[Pair]) -> Iterator[str]:
    seen: dict[str, None] = {}
    for p in pairs:
        seen.setdefault(p.kind, None)
    yield from seen
