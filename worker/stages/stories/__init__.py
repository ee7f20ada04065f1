"""Stage 5: story clusters — articles about the same event share a `story_id`.

Near-duplicate detection (dedup.py) links copies of one text. A *story* is wider: other outlets'
rewrites, translations and summaries of the same event, which share almost no shingles. They do
share what the event is made of, and those things can be written down without the language:

* entity ids from `tag_entities` ("person:vladimir-putin", "city:524305", "country:KP"),
* numbers, normalised across notations ("12,000", "12.000", "12 000", "1万2000", "1.2万" -> 12000;
  "3,75 %" and "3.75%" -> 3.75), years kept apart as a weaker feature,
* calendar dates, normalised to month-day ("March 27", "27. März", "27 марта", "3月27日",
  "3월 27일" -> 03-27; a bare "27日"/"27일" is dated from the article's event time).

Each feature has a base weight by kind (a date, a person or a city says more than a country;
entities mentioned often weigh more) times an IDF computed online over the last `idf_window`
articles, so the entities every article has (country:US) weigh little once the index has seen
some traffic.

An article is compared with the stories active around its event time (`window_s`): the cosine of
its weighted feature vector with each candidate story's centroid (the sum of its members'
normalised vectors), and, for the best few stories, with each of their recent members (single
link: a short summary that matches one long report well). The score is the larger of the two; at
or above `threshold` the article joins that story, otherwise it starts a new one. A story must
share at least `MIN_SHARED_WEIGHT` of base weight with the article (one common country and a year
never make a story). `matched` is the member article it resembled most.

Arrival order does not decide the stories. Candidates are found by the article's own event time
(postings per event-time bucket of `window_s`: a back-filled article finds its story), and an
article that also matches a second story at `merge_threshold` or more merges it into the one it
joins (`merged_stories`; the merged story is named by the smallest id): two halves of one event's
coverage that began as separate stories become one whichever arrives first. Stories leave by how
long ago their last article *arrived* (`retention_s`) and by a budget (`max_records`), never by
event time, so no date, however wrong, evicts anything.

Bounded cost per article, however many stories exist (docs/quality.md, "Cost per article"):
* an article contributes at most `MAX_ARTICLE_FEATURES` features (its heaviest ones);
* candidates come from an inverted index (event-time bucket, feature) -> story ids that keeps
  only the `MAX_POSTINGS` most recently updated stories per key (a hub feature such as country:US
  cannot fan out); `MAX_CANDIDATES` centroids and `MEMBER_CHECKS` stories' members are scored;
* a story keeps at most `MAX_STORY_FEATURES` centroid entries and `MAX_MEMBERS` member vectors;
* `evict_expired` drops whole stories (with their members' records) by arrival age and budget;
  the IDF table counts the last `idf_window` arrivals still indexed.

Limits, measured in docs/quality.md: with real publication times events days apart never meet,
and events two days apart with the same countries are separated by content; without times
(every article at one instant) two events made of the same entities — two ECB rate cuts, two
Putin-Kim summits — merge. An article whose entities the tagger misses (small Japanese towns) has
nothing to match on. Weights and threshold were chosen on worker/quality/data/articles.jsonl.

State is plain Python. `StoryRecord` (one per article: the decision and its features) is the
unit of persistence: `load` replays records (in decision order) into a fresh index — existing
articles keep their story ids, and stories continue — and `to_bytes`/`from_bytes` snapshot the
records still in the window. Pure and offline: no model, no network.

Modules: ``features`` (what an article is made of: `story_features`), ``index`` (`StoryIndex`:
the decision and its state).
"""

from __future__ import annotations

from worker.stages.stories.features import (
    KIND_WEIGHT,
    MAX_ARTICLE_FEATURES,
    extract_dates,
    extract_numbers,
    story_features,
)
from worker.stages.stories.index import (
    DEFAULT_IDF_WINDOW,
    DEFAULT_MAX_RECORDS,
    DEFAULT_MERGE_THRESHOLD,
    DEFAULT_RETENTION_S,
    DEFAULT_THRESHOLD,
    DEFAULT_WINDOW_S,
    MAX_CANDIDATES,
    MAX_MEMBERS,
    MAX_POSTINGS,
    MAX_STORY_FEATURES,
    MEMBER_CHECKS,
    MIN_SHARED_WEIGHT,
    StoryAssignment,
    StoryIndex,
    StoryRecord,
    new_story_id,
)

__all__ = [
    "DEFAULT_IDF_WINDOW",
    "DEFAULT_MAX_RECORDS",
    "DEFAULT_MERGE_THRESHOLD",
    "DEFAULT_RETENTION_S",
    "DEFAULT_THRESHOLD",
    "DEFAULT_WINDOW_S",
    "KIND_WEIGHT",
    "MAX_ARTICLE_FEATURES",
    "MAX_CANDIDATES",
    "MAX_MEMBERS",
    "MAX_POSTINGS",
    "MAX_STORY_FEATURES",
    "MEMBER_CHECKS",
    "MIN_SHARED_WEIGHT",
    "StoryAssignment",
    "StoryIndex",
    "StoryRecord",
    "extract_dates",
    "extract_numbers",
    "new_story_id",
    "story_features",
]
