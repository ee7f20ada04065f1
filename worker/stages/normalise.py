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
_SPACE_RUN = re.compile(" {2,}")
_MIN_PARAGRAPH_WORDS = 12  # a list of links has short lines; a paragraph rarely does


@dataclass(frozen=True, slots=True)
class NormalisedText:
    title: str
    body: str  # paragraphs joined by "\n\n"; entity offsets point into this
    paragraphs: tuple[str, ...]
    removed_lines: int  # boilerplate + repeated lines dropped


def _fold_spaces(text: str) -> str:
    """Every run of spaces (see _OTHER_SPACES) as one " "; newlines are kept."""
    for space in _OTHER_SPACES:
        if space in text:
            text = text.replace(space, " ")
    return _SPACE_RUN.sub(" ", text)


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
    """Drop a paragraph seen before in the same article, and a paragraph that is only a
    concatenation of paragraphs that follow (scrapes flatten a teaser block into one line)."""
    seen: set[str] = set()
    out: list[str] = []
    for p in paragraphs:
        key = p.casefold()
        if key in seen and len(p.split()) >= 3:
            continue
        seen.add(key)
        out.append(p)
    # A flattened block: one paragraph equal to a run of other paragraphs joined together.
    compact = [p.replace(" ", "") for p in out]
    result = [p for i, p in enumerate(out) if not _is_flattened_run(compact, i)]
    return result, len(paragraphs) - len(result)


def _is_flattened_run(compact: list[str], i: int) -> bool:
    target = compact[i]
    if len(target) < 100:
        return False
    for j in range(len(compact)):
        if j == i or not target.startswith(compact[j]):
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
    for line in reversed([l.strip() for l in body.splitlines() if l.strip()][-3:]):
        m = _SOURCE_TRAILER.match(line)
        if m:
            return m.group(1).strip()
    return None
