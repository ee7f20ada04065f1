"""Stage 3 hashing: the vectorised shingle hashes stand for exactly the reference shingles."""

from hypothesis import given, settings
from hypothesis import strategies as st

from worker.stages.hashing import hash_text, shingle_hashes, shingles

_TEXT = st.text(alphabet=st.sampled_from(list("ab cé_ 1\n.,Ωж北京 ")), max_size=80)


@settings(max_examples=300, deadline=None)
@given(_TEXT, _TEXT, st.sampled_from(["en", "zh-cn"]))
def test_shingle_hashes_are_the_shingle_set(a, b, language):
    """Same number of distinct shingles per text, same overlap between two texts."""
    sa, sb = set(shingles(a, language)), set(shingles(b, language))
    ha, hb = set(shingle_hashes(a, language).tolist()), set(shingle_hashes(b, language).tolist())
    assert (len(ha), len(hb), len(ha & hb)) == (len(sa), len(sb), len(sa & sb))


def test_signature_is_deterministic_and_counts_shingles():
    text = "The quick brown fox jumps over the lazy dog while the cat sleeps in the sun."
    a, b = hash_text(text, "en", 126), hash_text(text, "en", 126)
    assert a.signature.dtype.name == "uint32" and a.signature.shape == (126,)
    assert (a.signature == b.signature).all() and a.content_hash == b.content_hash
    assert a.shingle_count == len(set(shingles(text))) == 12
    assert hash_text("", "en", 126).shingle_count == 0
