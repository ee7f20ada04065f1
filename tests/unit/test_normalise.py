from pathlib import Path

from worker.sources import parse_txt
from worker.stages.normalise import normalise, source_trailer

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
