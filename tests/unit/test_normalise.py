import re
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from worker.io.sources import parse_txt
from worker.stages.normalise import _drop_repeated_blocks, _fold_spaces, normalise, source_trailer

SEEDS = Path(__file__).resolve().parents[2] / "seeds"


def test_nfkc_and_whitespace_are_folded():
    text = normalise("  Ｔitle\u00a0 here ", "First\u2003line  with   spaces.\r\n\r\n\r\nSecond ﬁ line.")
    assert text.title == "Title here"
    assert text.body == "First line with spaces.\n\nSecond fi line."


def test_boilerplate_lines_are_removed():
    body = ("Real paragraph one about the talks.\nAdvertisement\nPost a Comment\nPrevious Post Next Post\n"
            "RELATED STORIES\nShort link one\nShort link two\n"
            "Real paragraph two that is long enough to be a paragraph of an article text here.\nPost Comment")
    text = normalise("", body)
    assert text.paragraphs == ("Real paragraph one about the talks.",
                               "Real paragraph two that is long enough to be a paragraph of an article text here.")
    assert text.removed_lines == 7


def test_repeated_paragraph_is_dropped():
    p = "The same paragraph appears twice in this scraped article text."
    assert normalise("", f"{p}\n\nOther text here.\n\n{p}").paragraphs == (p, "Other text here.")


def test_flattened_teaser_block_in_seed_001_is_dropped():
    raw = (SEEDS / "001_14a510158fdf6985.txt").read_text()
    parsed = parse_txt(raw)
    text = normalise(parsed["title"], parsed["body"])
    # The scrape starts with the last four paragraphs flattened into one line: kept once only.
    assert sum("Andrey Rudenko said on Thursday" in p for p in text.paragraphs) == 1
    assert not text.paragraphs[0].startswith("North Korean leader to visit Russia Separately")
    assert "Previous Post" not in text.body and "Advertisement" not in text.body


def test_whitespace_and_boilerplate_variants_normalise_equal():
    raw = (SEEDS / "000_e45ea002119553a6.txt").read_text()
    parsed = parse_txt(raw)
    variant = "\n\n".join("  " + line.replace(" ", "  ") for line in parsed["body"].split("\n")) + "\nAdvertisement\n"
    assert normalise("", variant).body == normalise("", parsed["body"]).body


def test_source_trailer():
    assert source_trailer("text\nOriginal Source: www.rfa.org\nPost Comment") == "www.rfa.org"
    assert source_trailer("no trailer here") is None


# --- The shortcuts in _drop_repeated_blocks / _fold_spaces give the plain definitions' answers --

def _drop_repeated_blocks_plain(paragraphs: list[str]) -> list[str]:
    """The definition: casefold and compact every paragraph, try every run of paragraphs."""
    seen: set[str] = set()
    out: list[str] = []
    for p in paragraphs:
        key = p.casefold()
        if key in seen and len(p.split()) >= 3:
            continue
        seen.add(key)
        out.append(p)
    compact = [p.replace(" ", "") for p in out]

    def flattened(i: int) -> bool:
        # two or more consecutive other paragraphs, run together, are paragraph i (100+ chars)
        runs = ((j, k) for j in range(len(compact)) for k in range(j + 2, len(compact) + 1)
                if not j <= i < k)
        return len(compact[i]) >= 100 and any("".join(compact[j:k]) == compact[i] for j, k in runs)

    return [p for i, p in enumerate(out) if not flattened(i)]


_WORDS = st.sampled_from(["Straße", "STRASSE", "strasse", "ﬁre", "FIRE", "the", "The", "a", "news",
                          "Σίσυφος", "ΣΊΣΥΦΟΣ", "x" * 30, "y" * 55, "İstanbul", "i̇stanbul"])
_PARAGRAPH = st.lists(_WORDS, min_size=1, max_size=8).map(" ".join)


@given(st.lists(_PARAGRAPH, max_size=8), st.data())
@settings(max_examples=400, deadline=None)
def test_repeated_and_flattened_blocks_match_the_plain_definition(paragraphs, data) -> None:
    # add a flattened block (some consecutive paragraphs run together) now and then
    if len(paragraphs) >= 2 and data.draw(st.booleans()):
        a = data.draw(st.integers(0, len(paragraphs) - 2))
        b = data.draw(st.integers(a + 2, len(paragraphs)))
        block = " ".join(paragraphs[a:b]).replace(" ", data.draw(st.sampled_from(["", " "])))
        paragraphs.insert(data.draw(st.integers(0, a)), block)
    kept, removed = _drop_repeated_blocks(paragraphs)
    assert kept == _drop_repeated_blocks_plain(paragraphs)
    assert removed == len(paragraphs) - len(kept)


def test_flattened_block_found_behind_a_run_of_spaces() -> None:
    # normalise() never leaves two spaces in a row; called directly, the head must still be right
    parts = ["a    " * 15 + "x" * 100, "y" * 60]
    block = "".join(p.replace(" ", "") for p in parts)
    assert _drop_repeated_blocks([block, *parts]) == (_drop_repeated_blocks_plain([block, *parts]), 1)


@given(st.text(alphabet=" \t\u00a0\u2003\u3000a\nb", max_size=60))
def test_fold_spaces_matches_the_regex_definition(text) -> None:
    spaces = "[\t\u00a0\u202f\u205f\u3000\u2000-\u200b ]"
    assert _fold_spaces(text) == re.sub(f"{spaces}+", " ", text)
