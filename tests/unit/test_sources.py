from pathlib import Path

import orjson

from worker.io.sources import ReadReport, article_id, parse_txt, read_articles

SEEDS = Path(__file__).resolve().parents[2] / "seeds"


def test_seed_txt_headline_and_source():
    parsed = parse_txt((SEEDS / "000_e45ea002119553a6.txt").read_text())
    assert parsed["title"] == "Putin Advocates for Inclusion of North Korea and BRICS in Ukraine Ceasefire Talks"
    assert parsed["source"] == "www.rfa.org"
    assert "Original Source" not in parsed["body"]


def test_paragraph_first_line_is_not_a_headline():
    parsed = parse_txt((SEEDS / "002_b7859346e36d5c70.txt").read_text())
    assert parsed["title"] == ""
    assert parsed["body"].startswith("TAIPEI, Taiwan")


def test_ids_are_stable_and_salt_changes_them():
    first = [a["id"] for a in read_articles([SEEDS], ReadReport())]
    again = [a["id"] for a in read_articles([SEEDS], ReadReport())]
    salted = [a["id"] for a in read_articles([SEEDS], ReadReport(), salt="x")]
    assert first == again and len(set(first)) == 5
    assert not set(first) & set(salted)
    assert article_id("src", "t", "a  b") == article_id("src", "t", "a b")


def test_json_jsonl_and_errors_are_reported(tmp_path):
    (tmp_path / "one.json").write_bytes(orjson.dumps({"id": "a1", "title": "T", "body": "Body text"}))
    (tmp_path / "many.jsonl").write_text('{"body": "x y z"}\nnot json\n[1,2]\n{"title": "no body"}\n')
    (tmp_path / "broken.json").write_text("{oops")
    report = ReadReport()
    articles = list(read_articles([tmp_path], report))
    ids = sorted(a["id"] for a in articles)
    assert len(ids) == 2 and ids[0] == "a1" and ids[1].startswith("art-")
    assert report.files == 3
    assert len(report.errors) == 4, report.errors
    assert any("invalid JSON" in e for e in report.errors)
    assert any("broken.json" in e for e in report.errors)


def test_one_id_rule_for_the_seeder_and_the_worker(tmp_path):
    from worker.stages.ids import content_id
    from worker.stages.validate import parse_article

    assert article_id("src", "t", "body") == content_id("src", "t", "body")
    (tmp_path / "a.jsonl").write_text('{"title": "T", "body": "Some text.", "source": "S"}\n'
                                      '{"body": "Other text.", "url": "https://example.com/x?utm_source=y"}\n')
    for sent in read_articles([tmp_path / "a.jsonl"], ReadReport()):
        # the worker, given the same record without an id (and no key), derives the same id
        record = {k: v for k, v in sent.items() if k not in ("id", "id_source", "metadata")}
        derived = parse_article(None, orjson.dumps(record), 1 << 20)
        assert derived.id == sent["id"] and derived.id_source == sent["id_source"]
        # and what the seeder sends keeps its claim that the id was derived
        assert parse_article(sent["id"].encode(), orjson.dumps(sent), 1 << 20).id_source == sent["id_source"]
