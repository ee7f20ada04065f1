"""Enrichment quality, measured: `python -m worker.quality` regenerates docs/quality.md.

The labelled sets are package data in worker/quality/data/ (written for this project, see
data/README.md), read by data.py:

* language.jsonl  — texts in three length bands plus strings with no language  (langeval.py)
* articles.jsonl  — articles labelled with the event they report; the seeds are referenced
                    from seeds/. Source of the generated near-duplicate pairs (dupgen.py,
                    dupeval.py) and of the story-cluster evaluation (storyeval.py)
* entities.jsonl  — hand-labelled passages, entities marked inline               (enteval.py)
* language_paragraphs.jsonl — two news paragraphs per language, as sentences: the check set of
                    tests/unit/test_language.py and the source text of bench/'s corpus

Every evaluation is a pure function returning plain data; report.py turns the results into
Markdown and PNG, and tests/unit/test_quality.py holds the quality bars on the same results.
"""
