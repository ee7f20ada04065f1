"""Stage 1: normalise an article's text so that equal stories hash equally.

Unicode NFKC, one space between words, one blank line between paragraphs, boilerplate lines
that scraped news carries removed, and a paragraph block repeated verbatim inside the same
article dropped (scrapes often contain a teaser that repeats the lead).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

# Whole lines that are page furniture, not article text (matched case-insensitively,
# after whitespace folding). Kept explicit so a newcomer can see exactly what is removed.
_BOILERPLATE_LINE = re.compile(
    r"^(?:"
    r"post (?:a )?comments?|leave a (?:comment|reply)|comments?|"
    r"advertisement|advertising|sponsored(?: content)?|"
    r"previous post(?: next post)?|next post|previous article|next article|"
    r"read more:?|read also:?|see also:?|"
    r"share(?: this)?(?: article)?:?|share on (?:facebook|twitter|x)|tweet|"
    r"subscribe(?: now)?(?: to our newsletter)?|sign up for our newsletter|"
    r"click here to .{0,60}|follow us on .{0,40}|"
    r"skip to (?:main )?content|back to top|print|email"
    r")$",
    re.IGNORECASE,
)
# A heading that introduces a list of links ("RELATED STORIES", "More from ..."): the heading
# and the short lines after it, up to the next real paragraph, are dropped.
_LINK_LIST_HEADING = re.compile(r"^(?:related (?:stories|articles|posts|news)|more (?:from|stories|news)\b.*|"
                                r"you may also like|recommended(?: for you)?|trending(?: now)?)\s*:?$",
                                re.IGNORECASE)
_SOURCE_TRAILER = re.compile(r"^original source:\s*(.+)$", re.IGNORECASE)
# Spaces that fold to " ": tab, no-break, the U+2000-U+200B block, narrow no-break, medium
# mathematical, ideographic. Replaced one by one where present, then runs collapsed: literal
# searches, ~3x cheaper on 4 KB than a Unicode character class tried at every character.
_OTHER_SPACES = "\t\u00a0\u202f\u205f\u3000" + "".join(map(chr, range(0x2000, 0x200C)))
_MIN_PARAGRAPH_WORDS = 12  # a list of links has short lines; a paragraph rarely does


@dataclass(frozen=True, slots=True)
class NormalisedText:
    title: str
    body: str  # paragraphs joined by "\n\n"; entity offsets point into this
    paragraphs: tuple[str, ...]
    removed_lines: int  # boilerplate + repeated lines dropped


def _fold_spaces(text: str) -> str:
    """Every run of spaces (see _OTHER_SPACES) as one " "; newlines are kept."""
    for space in ("\t",) if text.isascii() else _OTHER_SPACES:
        if space in text:
            text = text.replace(space, " ")
    # Halving runs with str.replace: a run of k spaces needs log2(k) passes, each a C-speed
    # scan, where the regex tries every position (~4x slower on 4 KB).
    while "  " in text:
        text = text.replace("  ", " ")
    return text


def fold_whitespace(text: str) -> str:
    return _fold_spaces(text).strip()


def normalise(title: str, body: str) -> NormalisedText:
    title = fold_whitespace(unicodedata.normalize("NFKC", title or ""))
    text = unicodedata.normalize("NFKC", body or "").replace("\r\n", "\n").replace("\r", "\n")
    lines = [line.strip() for line in _fold_spaces(text).split("\n")]  # one pass, not one per line

    kept: list[str] = []
    removed = 0
    in_link_list = False
    for line in lines:
        if not line:
            in_link_list = False
            continue
        if _BOILERPLATE_LINE.match(line) or _SOURCE_TRAILER.match(line):
            removed += 1
            continue
        if _LINK_LIST_HEADING.match(line):
            in_link_list = True
            removed += 1
            continue
        if in_link_list and len(line.split()) < _MIN_PARAGRAPH_WORDS:
            removed += 1
            continue
        in_link_list = False
        kept.append(line)

    paragraphs, repeated = _drop_repeated_blocks(kept)
    return NormalisedText(title=title, body="\n\n".join(paragraphs),
                          paragraphs=tuple(paragraphs), removed_lines=removed + repeated)


def _drop_repeated_blocks(paragraphs: list[str]) -> tuple[list[str], int]:
    """Drop a paragraph seen before in the same article (ignoring case), and a paragraph that is
    only a concatenation of paragraphs that follow (scrapes flatten a teaser block into one line).

    Folding or compacting every paragraph whole was a third of this stage, so both checks first
    compare a short head of each paragraph (casefold works character by character, so the
    folded head is the head of the folded paragraph) and do the full work only on a match."""
    out: list[str] = []
    kept_by_head: dict[str, list[str]] = {}  # folded head -> paragraphs kept with that head
    for p in paragraphs:
        head = p[:_HEAD].casefold()[:_HEAD]
        kin = kept_by_head.get(head)
        if kin is None:
            kept_by_head[head] = [p]
        else:
            key = p.casefold()
            if len(p.split()) >= 3 and any(q.casefold() == key for q in kin):
                continue
            kin.append(p)
        out.append(p)

    # A flattened block starts with the paragraph that comes first in it. Heads without spaces
    # (after normalise's folding no two spaces are adjacent, so 3 x _HEAD characters are enough;
    # the whole paragraph is compacted for any other input):
    heads = [_compact_head(p) for p in out]
    by_head: dict[str, list[int]] = {}
    short: list[int] = []  # paragraphs shorter than a head: their head is all of them
    for j, head in enumerate(heads):
        if len(head) == _HEAD:
            by_head.setdefault(head, []).append(j)
        else:
            short.append(j)
    compact: list[str] = []  # out without spaces, made on the first candidate
    result: list[str] = []
    for i, p in enumerate(out):
        if len(p) - p.count(" ") >= _MIN_FLATTENED_CHARS:
            starts = [j for j in by_head[heads[i]] if j != i] + \
                     [j for j in short if heads[i].startswith(heads[j])]
            if starts:
                compact = compact or [q.replace(" ", "") for q in out]
                if _is_flattened_run(compact, i, starts):
                    continue
        result.append(p)
    return result, len(paragraphs) - len(result)


def _compact_head(paragraph: str) -> str:
    """paragraph.replace(" ", "")[:_HEAD], usually without compacting the whole paragraph."""
    head = paragraph[:3 * _HEAD].replace(" ", "")[:_HEAD]
    if len(head) < _HEAD and len(paragraph) > 3 * _HEAD:
        head = paragraph.replace(" ", "")[:_HEAD]
    return head


_HEAD = 24
_MIN_FLATTENED_CHARS = 100  # without spaces; shorter paragraphs are never taken for a block


def _is_flattened_run(compact: list[str], i: int, starts: list[int]) -> bool:
    """Whether compact[i] is compact[j] + compact[j + 1] + ... (two or more, not i itself) for
    a j in starts."""
    target = compact[i]
    for j in starts:
        if not target.startswith(compact[j]):
            continue
        joined, k = compact[j], j + 1
        while len(joined) < len(target) and k < len(compact) and k != i:
            joined += compact[k]
            k += 1
        if joined == target and k - j >= 2:
            return True
    return False


def source_trailer(body: str) -> str | None:
    """The value of a trailing 'Original Source: …' line, if the text has one."""
    for line in reversed([row.strip() for row in body.splitlines() if row.strip()][-3:]):
        m = _SOURCE_TRAILER.match(line)
        if m:
            return m.group(1).strip()
    return None
