"""A labelled syndication set, generated deterministically from worker/quality/data/syndication.jsonl.

The data file holds wire stories (agency copy: paragraphs of sentences, an agency update), the
statements and advisories they quote, and independently written articles about the same events
(several of which carry the same statement or advisory word for word). From them:

    original        the agency's text, with its dateline ("GULF SHORES, Ala. (AP) — ...")
    full            the whole text under another headline, without the dateline, with page
                    furniture (Advertisement, Read more, the agency's copyright line)
    cut             the first k paragraphs (k drawn), another headline
    intro_cut       the outlet's own intro paragraph, then the first k paragraphs
    update          the agency's later version: a new lead, a sentence rewritten, the rest cut at k
    edited          a copy-edited version: a share of the sentences reworded (0.3–0.8), cut at k
    excerpt         two middle paragraphs under an intro (what an aggregator quotes)
    brief           the first paragraph alone

The wire story and its copies are one group: every pair within it is a reprint pair. Every other
pair is not one, among them the hard negatives: independent coverage of the same event, and
articles that carry the same statement (quoted) or advisory (not quoted) as the wire copies and
each other. All randomness comes from `random.Random(f"{seed}:{story id}:{kind}")`.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from functools import lru_cache

import orjson

from worker.quality.data import DATA

DEFAULT_SEED = 20250916
COPY_KINDS = ("full", "cut", "intro_cut", "update", "edited", "excerpt", "brief")
COPYRIGHT = {
    "AP": "Copyright 2024 The Associated Press. All rights reserved. This material may not be published, "
          "broadcast, rewritten or redistributed without permission.",
    "Reuters": "Our Standards: The Thomson Reuters Trust Principles apply to this article and to all of the "
               "reporting published under our name.",
    "AFP": "All rights reserved for the content of this dispatch, which is distributed by Agence France-Presse "
           "to its subscribers only.",
    "PA": "This story was provided by the PA news agency and is distributed to its media customers under a "
          "licence agreement.",
}
_INTROS = (
    "Here is the latest on this developing story from our partners at the {agency} news agency, as published "
    "on {weekday}.",
    "The following report was filed by {agency} correspondents and has been edited for length by our news desk "
    "this {weekday}.",
    "Readers have asked us for updates on this story, so we are publishing the latest agency report in full "
    "below today.",
)
_EDITS = ((r"\bsaid\b", "told reporters"), (r"\bon (Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)\b",
                                           r"on \1 local time"),
          (r"\bmore than\b", "over"), (r"\babout\b", "roughly"), (r"\bwould\b", "will"), (r"\bofficials\b",
                                                                                      "authorities"))
_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


@dataclass(frozen=True, slots=True)
class SyndDoc:
    id: str
    group: str  # the wire story id for the original and its copies; its own id for an independent article
    kind: str  # original | one of COPY_KINDS | independent
    event: str
    title: str
    body: str
    url: str
    statements: tuple[str, ...]  # the statements / advisories it carries


@lru_cache(maxsize=1)
def _records() -> tuple[dict, ...]:
    return tuple(orjson.loads(line) for line in (DATA / "syndication.jsonl").read_bytes().splitlines() if line.strip())


def _statements() -> dict[str, dict]:
    return {r["id"]: r for r in _records() if r["type"] == "statement"}


def _render_statement(ref: str) -> str:
    sid, _, attribution = ref[1:].partition("|")
    statement = _statements()[sid]
    sentences = statement["sentences"]
    if not statement["quoted"]:
        return " ".join(sentences)
    body = " ".join(sentences).rstrip(".")
    return f"“{body},” {attribution or 'officials said'}."


def _paragraphs(items: list[list[str]]) -> tuple[list[str], list[str]]:
    """Rendered paragraphs, and the statement ids used. A statement is a paragraph of its own."""
    out: list[str] = []
    used: list[str] = []
    for paragraph in items:
        plain = [s for s in paragraph if not s.startswith("@")]
        if plain:
            out.append(" ".join(plain))
        for ref in (s for s in paragraph if s.startswith("@")):
            out.append(_render_statement(ref))
            used.append(ref[1:].partition("|")[0])
    return out, used


def _url(outlet: str, date: str, slug: str, dated: bool = True) -> str:
    host = re.sub(r"[^a-z]+", "", outlet.lower()) or "news"
    path = f"/{date.replace('-', '/')}/" if dated else "/news/"
    return f"https://www.{host}.example{path}{slug}"


def _edit(sentence: str, rng: random.Random) -> str:
    """A copy editor's change that keeps the meaning: one substitution, or a trimmed tail clause."""
    options = [(p, r) for p, r in _EDITS if re.search(p, sentence)]
    if options:
        pattern, repl = rng.choice(options)
        return re.sub(pattern, repl, sentence, count=1)
    if ", " in sentence:
        return sentence.rsplit(", ", 1)[0] + "."
    return "Meanwhile, " + sentence[0].lower() + sentence[1:]


def wire_docs(record: dict, seed: int = DEFAULT_SEED) -> list[SyndDoc]:
    sid, agency, event = record["id"], record["agency"], record["event"]
    paragraphs, used = _paragraphs(record["paragraphs"])
    statements = tuple(used)
    n = len(paragraphs)
    dateline = f"{record['dateline']} ({agency}) — "
    weekday = _WEEKDAYS[sum(map(ord, record["date"])) % 7]

    def doc(kind: str, title: str, paras: list[str], furniture: bool = False) -> SyndDoc:
        body = "\n\n".join(paras)
        if furniture:
            body = "\n\n".join([paras[0], "Advertisement", *paras[1:], f"Read more: {title}",
                                COPYRIGHT[agency], "Share this article"])
        kept = tuple(s for s in statements if _statements()[s]["sentences"][0][:40] in body)
        return SyndDoc(f"{sid}-{kind}", sid, kind, event, title, body,
                       _url(f"outlet{kind}{sid}", record["date"], kind, dated=kind != "edited"), kept)

    def rng(kind: str) -> random.Random:
        return random.Random(f"{seed}:{sid}:{kind}")

    original = [dateline + paragraphs[0], *paragraphs[1:]]
    out = [doc("original", record["title"], original)]
    out.append(doc("full", f"{record['title']} | World news", paragraphs, furniture=True))
    k = rng("cut").randint(1, max(1, n - 2))
    out.append(doc("cut", record["title"].split(",")[0], paragraphs[:k]))
    r = rng("intro_cut")
    intro = r.choice(_INTROS).format(agency=agency, weekday=weekday)
    out.append(doc("intro_cut", f"Latest: {record['title']}", [intro, *paragraphs[:r.randint(2, max(2, n - 1))]]))
    update = record["update"]
    updated = [list(p) for p in record["paragraphs"]]
    for p, s, text in update.get("replace", ()):
        updated[p][s] = text
    up, _ = _paragraphs(updated)
    r = rng("update")
    out.append(doc("update", f"UPDATE: {record['title']}", [dateline + " ".join(update["lead"]),
                                                             *up[:r.randint(2, n)]], furniture=True))
    r = rng("edited")
    share = r.uniform(0.3, 0.8)
    edited, _ = _paragraphs([[s if s.startswith(("@", "“")) or r.random() >= share else _edit(s, r) for s in p]
                             for p in record["paragraphs"]])
    out.append(doc("edited", record["title"].replace(" ", "  ").strip(), edited[:r.randint(max(2, n - 2), n)]))
    r = rng("excerpt")
    start = r.randint(1, max(1, n - 2))
    out.append(doc("excerpt", f"In brief: {record['title']}",
                   [r.choice(_INTROS).format(agency=agency, weekday=weekday), *paragraphs[start:start + 2]]))
    out.append(doc("brief", record["title"], paragraphs[:1]))
    return out


def independent_doc(record: dict) -> SyndDoc:
    paragraphs, used = _paragraphs(record["paragraphs"])
    return SyndDoc(record["id"], record["id"], "independent", record["event"], record["title"],
                   "\n\n".join(paragraphs), _url(record["outlet"], record["date"], record["id"]), tuple(used))


@lru_cache(maxsize=4)
def generate(seed: int = DEFAULT_SEED) -> tuple[SyndDoc, ...]:
    docs: list[SyndDoc] = []
    for record in _records():
        if record["type"] == "wire":
            docs += wire_docs(record, seed)
        elif record["type"] == "independent":
            docs.append(independent_doc(record))
    return tuple(docs)
