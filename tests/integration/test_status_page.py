"""The status page in a real headless browser (Debian's chromium): after the seeds, a copy of one
and a hostile title, it shows the counts, the 4-member story, the duplicate pair, and the title
as text."""

from __future__ import annotations

import asyncio
import html
import shutil
import subprocess
import urllib.request
from pathlib import Path

import orjson
import pytest

import topics
from worker.io.seeder import run_seeder

from .helpers import produce, start_with_seeds, wait_for

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
HOSTILE = "<script>alert(1)</script> <img src=x onerror=alert(2)>"


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    assert found, "no chromium on PATH: `apt-get install -y chromium` (.ci/run installs it)"
    return found


def rendered_dom(url: str, tmp_path: Path) -> str:
    """The page's DOM after its script ran (chromium --dump-dom with virtual time to let it fetch)."""
    result = subprocess.run(
        [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
         f"--user-data-dir={tmp_path / 'chromium'}", "--virtual-time-budget=5000", "--dump-dom", url],
        capture_output=True, text=True, timeout=90)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def status(port: int) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/status.json", timeout=5) as response:
        return orjson.loads(response.read())


def test_status_page_shows_counts_story_duplicate_pair_and_escapes_titles(kafka, names, tmp_path):
    settings, worker, seeded = start_with_seeds(kafka.bootstrap_servers, names, tmp_path)
    try:
        # a copy of the seed that is a story of its own (the other four are one story)
        copy = asyncio.run(run_seeder(sorted((ROOT / "seeds").glob("003_*")), settings, new_ids=True,
                                      progress=False))
        hostile = {"id": "hostile-1", "title": HOSTILE, "source": "test",
                   "body": "The harbour office published next month's tide tables for the coast. " * 8}
        asyncio.run(produce(kafka.bootstrap_servers, names.topic(topics.RAW.base_name),
                            [(b"hostile-1", orjson.dumps(hostile)), (b"bad-1", b"{not json <b>bold</b>")]))
        wait_for(lambda: status(worker.web_port)["verdicts"]["total"].get("unique", 0) == 6
                 and status(worker.web_port)["dead_letters"]["latest"], timeout=60, what="7 inputs on the board")

        board = status(worker.web_port)
        assert board["holds_funnel"] and board["ready"]
        assert board["verdicts"]["total"] == {"unique": 6, "exact_duplicate": 1}
        (pair,) = board["duplicates"]
        assert pair["original"]["id"] in seeded.ids and pair["article"]["id"] == copy.ids[0]
        assert pair["original"]["title"] == pair["article"]["title"]  # both titles known: side by side
        assert sorted(s["size"] for s in board["stories"])[-2:] == [2, 4]  # 4 seeds; a seed and its copy
        assert board["dead_letters"]["by_reason"] == [{"reason": "invalid_json", "stage": "validate", "count": 1}]

        dom = rendered_dom(f"http://127.0.0.1:{worker.web_port}/status", tmp_path)
        assert 'data-loaded="true"' in dom, dom[-3000:]
        assert "unique 6 · exact 1 · near 0" in dom
        assert "4 articles · en 4" in dom  # the largest story's line
        assert pair["article"]["title"] in html.unescape(dom)
        assert "exact_duplicate · similarity 1" in dom
        # The hostile title is text, not markup: escaped in the DOM, no element made of it.
        assert html.escape(HOSTILE, quote=False) in dom
        assert "<img src=\"x\"" not in dom and "<img src=x" not in dom
        assert dom.count("<script") == 1  # the page's own script only
        assert "{not json &lt;b&gt;bold&lt;/b&gt;" in dom  # the dead letter's preview, as text
    finally:
        worker.stop()
