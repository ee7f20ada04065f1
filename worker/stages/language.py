"""Language identification for incoming articles.

How
---
We score text with langdetect's OWN shipped profiles (55 languages, 1-3
character n-gram frequency tables) but replace langdetect's evaluation:

* langdetect draws n-grams at random (7 trials of up to 1000 draws) and
  multiplies ``alpha/10000 + p(ngram | lang)`` per draw.  That is random
  unless seeded, noisy on short text, and slow (several ms per article).
* We extract exactly the n-grams langdetect would (same URL/e-mail removal,
  Vietnamese folding, NGram.normalize, ALL-CAPS skipping, Latin cleaning) and
  sum ``count * log(alpha/10000 + p)`` over all of them: each langdetect draw
  adds one such term for a random n-gram, so we rank languages by what its
  trials estimate, without the noise.  No randomness, same answer in every
  process.

Cost is bounded by sampling: a text longer than ``SAMPLE_CHARS`` is read in
``N_WINDOWS`` windows spread from its start to its end, each cut at
whitespace, and a window that is mostly digits, markup or URLs is replaced by
a neighbouring one.  Everything after that is a few vectorised numpy
operations (~120 us for a 4 KB article, however long the text is).

Reading the result
------------------
* ``code`` is a langdetect code ("en", "zh-cn", "zh-tw", ...), one of "ms",
  "sr", "bs" (no profile: recovered from an id, hr or mk answer by marker
  words, see "Close relatives" below), or ``"und"``
  when the sample has fewer than ``MIN_LETTERS`` letters the profiles know
  (digits, punctuation, URLs and short strings).  ``und`` always comes with
  confidence 0.0 and no candidates: we never guess on too little text.
* ``confidence`` is the probability of ``code`` (``candidates[0]``).  Scores
  become probabilities through a softmax with a temperature
  (``TEMPERATURE``), because overlapping 1-, 2- and 3-grams are far from
  independent and a plain softmax would claim 1.0 for every sentence.  We
  still return the best code when it is weak: below ``RELIABLE_CONFIDENCE``
  (0.5) treat it as a guess (very short text, or close pairs such as no/da,
  es/pt, nl/af).  On the labelled sentences and fragments of
  bench/language_eval.py, answers at >= 0.9 were right 99.6% of the time,
  answers below 0.5 about half of the time.  When the marker-word step
  changes the answer, the confidence is the winner's share of its group's
  probability after a Bayesian update (see "Close relatives").

Memory: ~27 MB of tables per process, loaded once (~0.2 s, ``warm_up``).
"""

from __future__ import annotations

import math
import os
import re
import threading
import unicodedata
from dataclasses import dataclass

import numpy as np
import orjson
from langdetect.detector import Detector
from langdetect.detector_factory import PROFILES_DIRECTORY
from langdetect.utils.ngram import NGram

__all__ = [
    "LanguageResult",
    "RELIABLE_CONFIDENCE",
    "UND",
    "detect_language",
    "warm_up",
]

UND = "und"

# --- Sampling -------------------------------------------------------------
# ~800 characters are plenty for a paragraph-level decision and keep a call
# near 120 us.  Long texts contribute N_WINDOWS windows spread over the
# article, so a foreign-language quote or a boilerplate header cannot decide
# alone.
SAMPLE_CHARS = 800
N_WINDOWS = 4
WINDOW_CHARS = SAMPLE_CHARS // N_WINDOWS
# A window is "good" if at least this share of its characters are letters the
# profiles know (after URLs and e-mails are removed).
MIN_WINDOW_LETTER_RATIO = 0.5
# Windows are cut at whitespace found within this many characters of the raw
# cut; text without spaces nearby (Chinese, Japanese) is cut where it is.
SNAP_CHARS = 32

# --- Decision -------------------------------------------------------------
# Below this many known letters we answer "und".  A Han/kana/Hangul character
# carries about a syllable, so it counts WIDE_CHAR_WEIGHT letters.
MIN_LETTERS = 20
WIDE_CHAR_WEIGHT = 2
# Softmax temperature applied to the summed log-likelihoods (see module doc).
# 3 minimised log loss and calibration error on ~1400 labelled sentences and
# fragments (bench/language_eval.py --fit-temperature); it is also about the
# number of n-grams (1, 2 and 3) that each character takes part in.
TEMPERATURE = 3.0
RELIABLE_CONFIDENCE = 0.5
N_CANDIDATES = 3
# One deliberate departure from langdetect: the ko and ja profiles also hold
# many Han n-grams (Hanja, kanji), and on purely Han text ko regularly beats
# zh-tw (langdetect itself says "ko" for Traditional Chinese news).  Korean
# and Japanese are only allowed when the sample has at least one character of
# their own script.
_REQUIRED_SCRIPT = {
    "ko": ((0x1100, 0x11FF), (0x3130, 0x318F), (0xAC00, 0xD7AF)),  # Hangul
    "ja": ((0x3040, 0x30FF), (0x31F0, 0x31FF), (0xFF66, 0xFF9F)),  # kana
}

# langdetect's own smoothing: every factor is ALPHA/BASE_FREQ + p(ngram|lang).
_SMOOTHING = Detector.ALPHA_DEFAULT / Detector.BASE_FREQ

# n-grams are packed into one integer, 21 bits per code point (the whole
# Unicode range).  Shorter n-grams have zero high bits, and every n-gram
# character is >= U+0020, so 1-, 2- and 3-grams can never collide.
_CP_BITS = 21
_SPACE = 0x20
_N_CODEPOINTS = 0x110000

# --- Close relatives the profiles cannot separate ----------------------------
#
# langdetect has no Malay, Serbian or Bosnian profile, so Malay text is scored
# as Indonesian, Latin Serbian and Bosnian as Croatian, and Cyrillic Serbian as
# Macedonian (ј, љ, њ, џ n-grams exist only in the mk profile).  Danish and
# Norwegian both have profiles but share most n-grams, so short texts swing on
# one or two letters.  After scoring, an answer listed in _RELATIVES is checked
# against marker words: spellings and words that one standard uses and its
# relatives do not (Malay "bahawa", "kerana" for Indonesian "bahwa", "karena";
# Serbian ekavian "posle", "mesto" for ijekavian "poslije", "mjesto"; Croatian
# "tisuća", "tjedan" for Serbian/Bosnian "hiljada", "sedmica"; Danish "af",
# "aldrig" for Norwegian "av", "aldri").  Each marker names the members that
# use it; a word counts once per occurrence.
#
# The evidence is combined as a Bayesian update inside the group:
#
#   weight(l) = prior(l) * MARKER_ODDS ** (markers that support l)
#
# where prior(l) is the profile probability of l, and for a member without a
# profile (ms, sr, bs) the probability of the answered code, whose profile
# stands for the whole group.  The weights are rescaled so that the group keeps
# the probability mass its profiled members had, and the result is re-ranked:
# the winner becomes candidates[0] and its share of that mass the confidence.
# So one Malay marker and nothing Indonesian turns id 1.0 into ms 0.75 / id
# 0.25; two markers give ms 0.9.  A marker counts as MARKER_ODDS:1 evidence,
# not as proof, because quotes, names and loanwords cross borders.
#
# The result changes only when the evidence is clear: some member must have
# more markers than the answer, its weight must be strictly higher than the
# answer's (a tie keeps the answer; between two other members the first listed
# wins) and it must then be the most probable language overall.
# Otherwise the profile answer and its confidence are returned unchanged, so
# texts without markers (and every language outside these groups) score
# exactly as before.  Cost: one pass over the words of the sample (at most
# SAMPLE_CHARS characters), set and prefix look-ups only.
#
# Known limits: Serbian and Bosnian share everything that separates them from
# Croatian (hiljada, voz, porodica, uhapsiti); they are told apart by the
# yat reflex (ekavian "reka" is Serbian, ijekavian "rijeka" Croatian or
# Bosnian) and a few words (Serbian "opština", "istorija"; Bosnian
# "historija", "hljeb").  Without either, sr and bs tie and sr (listed first)
# is returned at about half the group mass, i.e. below RELIABLE_CONFIDENCE.
# Ijekavian Serbian and Montenegrin are read as Bosnian.  Cyrillic Serbian is
# only recovered from an mk answer (Serbian is the only user of ђ, ћ; Macedonian
# alone has ѓ, ќ, ѕ).
MARKER_ODDS = 3.0


@dataclass(frozen=True, slots=True)
class _Marker:
    """Words that support the members ``langs`` of a group."""

    langs: frozenset[str]
    words: frozenset[str] = frozenset()
    prefixes: tuple[str, ...] = ()
    # Word endings, for words at least MIN_SUFFIX_STEM letters longer.
    suffixes: tuple[str, ...] = ()
    # Letters that only these members write; a word with one counts.
    letters: frozenset[str] = frozenset()

    def count(self, words: list[str]) -> int:
        n = 0
        for w in words:
            if (
                w in self.words
                or (self.prefixes and w.startswith(self.prefixes))
                or (self.suffixes and w.endswith(self.suffixes) and len(w) >= 4)
                or (self.letters and not self.letters.isdisjoint(w))
            ):
                n += 1
        return n


def _m(langs: str, words: str = "", prefixes: str = "", suffixes: str = "", letters: str = "") -> _Marker:
    return _Marker(frozenset(langs.split()), frozenset(words.split()), tuple(prefixes.split()),
                   tuple(suffixes.split()), frozenset(letters))


# Malay / Indonesian: mostly spelling pairs (bahawa/bahwa, kerana/karena,
# wang/uang, Isnin/Senin, universiti/universitas, filem/film) and a few
# everyday words the other standard does not use that way (kerajaan is
# Malaysia's "government", Indonesian says pemerintah).
_ID_MS = (
    _m("ms", words="bahawa kerana polis wang isnin khamis ahad jumaat kerajaan kewangan baharu sesiapa "
                   "sahaja iaitu selepas berbanding filem antarabangsa universiti kenderaan projek kualiti "
                   "aktiviti syarikat mesyuarat kakitangan jurucakap jurulatih majlis bomba hujung"),
    _m("id", words="bahwa karena polisi uang senin kamis jumat pemerintah keuangan kemarin sore yaitu film "
                   "internasional universitas kendaraan proyek kualitas aktivitas mobil kantor bisa bandara"),
)

# Croatian / Serbian / Bosnian (Latin script).
_HR_SR_BS = (
    # Yat reflex, ekavian: standard Serbian only.
    _m("sr", words="pre gde ovde negde uvek dve deo vek veka veku vest vesti veče uveče vreme dete deca dece "
                   "deci decu decom reč reči reka reke reku cena cene ceni cenu cenama ceo cela celu celog "
                   "celoj lep lepa lepo lepe mera mere meru merama hteo htela želeo želela živeo živela",
       prefixes="posle predsedn sever mest nedelj mlek svetsk delov poset primer pesm devojk smer izmen promen "
                "razmen povređ sused uspe vredn rešen reši dvest lekar zvezd verovat sedišt"),
    # Yat reflex, ijekavian: Croatian and Bosnian.
    _m("hr bs", words="prije gdje ovdje negdje uvijek dvije dio vijek vijeka vijest vijesti večer navečer uvečer "
                      "vrijeme dijete djeca djece djeci djecu djecom riječ riječi rijeka rijeke rijeku cijena "
                      "cijene cijeni cijenu cijenama cio cijela cijelu cijelog cijeloj lijep lijepa lijepo "
                      "lijepe mjera mjere mjeru mjerama htio htjela želio željela živio živjela",
       prefixes="poslije posljed predsjedn sjever mjest nedjelj mlijek svjetsk dijelov posjet primjer pjesm "
                "djevojk smjer izmjen promjen razmjen povrijeđ susjed uspje vrijedn rješen riješ dvjest "
                "ljekar zvijezd vjerovat vjerojat sjedišt"),
    # Croatian vocabulary and Slavic month names.
    _m("hr", words="tko nitko netko kruh vlak vlaka vlakom tijekom točno",
       prefixes="tisuć tjed povijes sveučiliš znanstv glazb zrakoplov nogomet obitelj gospodarst gospodarsk "
                "kućanst uhiti uhićen priopć financij europ izbornik kazališ tračnic siječ veljač ožuj travan "
                "travnj svib lipan lipnj srpan srpnj kolovoz rujan rujn listopad prosin"),
    # Serbian and Bosnian vocabulary, Latin month names.
    _m("sr bs", words="voz voza vozom vozu vozovi vozova šine šina šinama niko ko tačno tokom kafa sprat",
       prefixes="hiljad porodic finansij univerzitet naučn uhaps uhapš evrop fudbal saobraćaj pozoriš dešava "
                "sedmic januar februar septemb oktob novemb decemb avgust"),
    _m("sr", prefixes="opšt istorij saopšt hleb"),
    _m("bs", prefixes="historij hljeb saopć kahv lahk"),
    _m("hr bs", prefixes="opć"),
)

# Macedonian / Serbian (Cyrillic).  Serbian: ђ, ћ, "је", "су", "у" and the
# masculine past participle in -ао/-ио (Macedonian -л: рекол, затворил).
_MK_SR = (
    _m("sr", words="је су у није који која које којих био", suffixes="ао ио", letters="ђћ"),
    _m("mk", words="е во ги го дека со кон сите оваа овие", letters="ѓќѕ"),
)

# Danish / Norwegian (Bokmål and Nynorsk) spelling pairs.
_DA_NO = (
    _m("da", words="af aldrig mod nogle noget efter mig dig sig blev havde sagde bliver ud op gennem mellem "
                   "uge ugen igen nu siger gør hvad spørgsmål hjælp købe"),
    _m("no", words="av aldri mot noen noe etter meg deg seg ble hadde sa blir ut opp gjennom mellom uke uken "
                   "igjen nå sier gjør hva spørsmål hjelp kjøpe ikkje"),
)

# answered code -> (members in tie-break order, markers)
_RELATIVES: dict[str, tuple[tuple[str, ...], tuple[_Marker, ...]]] = {
    "id": (("id", "ms"), _ID_MS),
    "hr": (("hr", "sr", "bs"), _HR_SR_BS),
    "mk": (("mk", "sr"), _MK_SR),
    "da": (("da", "no"), _DA_NO),
    "no": (("no", "da"), _DA_NO),
}

_WORD_RE = re.compile(r"[^\W\d_]+")

_WHITESPACE_RE = re.compile(r"\s")
_LAST_WHITESPACE_RE = re.compile(r"\s(?=\S*\Z)")
# What each of langdetect's rewrites in prepare() needs to find anything: checked first,
# because most windows have none of them and a substring test is cheaper than a failed sub().
_VI_MARK_RE = re.compile(f"[{NGram.DMARK_CLASS}]")


@dataclass(frozen=True, slots=True)
class LanguageResult:
    code: str
    confidence: float
    candidates: tuple[tuple[str, float], ...]

    def to_dict(self) -> dict:
        return {
            "code": self.code,
            "confidence": self.confidence,
            "candidates": [{"code": c, "prob": p} for c, p in self.candidates],
        }


_UNDETERMINED = LanguageResult(UND, 0.0, ())


class _Model:
    """langdetect's profiles as arrays, plus per-code-point lookup tables."""

    def __init__(self, profile_dir: str = PROFILES_DIRECTORY) -> None:
        # Sorted file names fix the language order (langdetect uses
        # os.listdir order), which makes ties resolve the same everywhere.
        names = sorted(f for f in os.listdir(profile_dir) if not f.startswith("."))
        profiles = []
        for name in names:
            with open(os.path.join(profile_dir, name), "rb") as fh:
                profiles.append(orjson.loads(fh.read()))
        self.langs: tuple[str, ...] = tuple(p["name"] for p in profiles)

        # One row per n-gram, ordered by packed key for np.searchsorted.
        grams = list({g for p in profiles for g in p["freq"]})
        packed = np.fromiter(map(_pack, grams), dtype=np.uint64, count=len(grams))
        order = np.argsort(packed, kind="stable")
        self.keys = packed[order]
        grams = [grams[i] for i in order]
        row_of = {g: i for i, g in enumerate(grams)}

        # p(ngram | lang) exactly as DetectorFactory.add_profile computes it.
        prob = np.zeros((len(grams), len(self.langs)), dtype=np.float32)
        for j, p in enumerate(profiles):
            freq, n_words = p["freq"], p["n_words"]
            rows = np.fromiter((row_of[g] for g in freq), dtype=np.intp, count=len(freq))
            counts = np.fromiter(freq.values(), dtype=np.float64, count=len(freq))
            totals = np.array([n_words[len(g) - 1] for g in freq], dtype=np.float64)
            prob[rows, j] = counts / totals
        # log((s + p) / s) instead of log(s + p): the per-row constant log(s)
        # cancels in the normalisation, and values start at 0 for unseen
        # n-grams, which keeps float32 sums accurate.
        self.loglik = np.log1p(prob / np.float32(_SMOOTHING))

        # NGram.normalize is a pure per-character map that only touches BMP
        # blocks; tabulate it once instead of calling it per character.
        self.norm = np.arange(_N_CODEPOINTS, dtype=np.uint32)
        bmp = "".join(map(NGram.normalize, _chars(0x10000)))
        self.norm[:0x10000] = _codepoints(bmp)
        # langdetect skips n-grams inside ALL-CAPS runs using str.isupper.
        self.upper = np.zeros(_N_CODEPOINTS, dtype=bool)
        self.upper[_codepoints("".join(filter(str.isupper, _chars(_N_CODEPOINTS))))] = True
        # "Letters" for the und decision and window quality: letters and
        # combining marks (Indic and Thai vowel signs are marks) that some
        # profile has as a unigram, after normalisation.  Digits and
        # punctuation never count.
        letters = [g for g in grams if len(g) == 1 and unicodedata.category(g)[0] in "LM"]
        self.letter_weight = np.zeros(_N_CODEPOINTS, dtype=np.uint8)
        for ch in letters:
            self.letter_weight[ord(ch)] = WIDE_CHAR_WEIGHT if ord(ch) >= 0x3000 else 1
        # For each script-gated language: which rows are unigrams of its
        # script (kana and Hangul are folded to one character by normalize).
        self.script_gates: list[tuple[int, np.ndarray]] = []
        for lang, ranges in _REQUIRED_SCRIPT.items():
            in_script = np.zeros(len(grams), dtype=bool)
            for lo, hi in ranges:
                in_script |= (self.keys >= lo) & (self.keys <= hi)
            self.script_gates.append((self.langs.index(lang), in_script))
        # Shared by all threads and calls: make accidental writes fail loudly.
        for table in (self.keys, self.loglik, self.norm, self.upper, self.letter_weight):
            table.flags.writeable = False
        for _, in_script in self.script_gates:
            in_script.flags.writeable = False

    # -- feature extraction ------------------------------------------------

    def prepare(self, text: str) -> np.ndarray:
        """Raw code points of ``text`` after langdetect's Detector.append.

        URLs and e-mail addresses are removed and Vietnamese combining marks
        folded, with langdetect's own regular expressions.
        """
        if "://" in text:
            text = Detector.URL_RE.sub(" ", text)
        if "@" in text:
            text = Detector.MAIL_RE.sub(" ", text)
        if not text.isascii() and _VI_MARK_RE.search(text):
            text = NGram.normalize_vi(text)
        return _codepoints(text)

    def rows(self, raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Profile rows (distinct) and counts of the n-grams langdetect would
        extract from ``raw``.

        A vectorised transcription of Detector.cleaning_text and
        Detector._extract_ngrams (including NGram.add_char's buffer rules).
        """
        # cleaning_text: mostly non-Latin text drops its Latin letters.  Two
        # langdetect quirks are kept on purpose: 'A'..'z' includes [\]^_`, and
        # its Latin Extended Additional exemption never fires (it compares a
        # block number with a block name), so everything >= U+0300 counts.
        latin = (raw >= 0x41) & (raw <= 0x7A)
        non_latin = raw >= 0x300
        if 2 * np.count_nonzero(latin) < np.count_nonzero(non_latin):
            raw = raw[~latin]

        # NGram starts with a space in its buffer: prepend it explicitly.
        a = np.empty(raw.size + 1, dtype=np.uint32)
        a[0] = _SPACE
        a[1:] = self.norm[raw]
        space = a == _SPACE
        upper = self.upper[a]
        # n-grams ending at position j are dropped when a[j] and a[j-1] are
        # both upper case (NGram.capitalword).
        keep = ~(upper[1:] & upper[:-1])
        wide = a.astype(np.uint64)
        cur, prev = wide[1:], wide[:-1]
        bigram = (prev << _CP_BITS) | cur
        # Unigram: never a space.  Bigram: never two spaces (the buffer was
        # reset).  Trigram: the middle character is not a space (the buffer
        # never holds a space except at its start or end).
        uni = keep & ~space[1:]
        bi = keep & ~(space[1:] & space[:-1])
        tri = keep[1:] & ~space[1:-1]
        trigram = (wide[:-2] << (2 * _CP_BITS)) | bigram[1:]
        packed = np.concatenate((cur[uni], bigram[bi], trigram[tri]))

        # Count distinct n-grams first: a news sample repeats most of them,
        # and the lookup and the weighted sum then touch ~3x fewer rows.
        # Sorted-key lookup; n-grams no profile has are ignored, as in
        # langdetect.
        # (np.unique(return_counts=True) spelled out: the same sort, fewer passes)
        packed.sort()
        first = np.empty(packed.size, dtype=bool)
        first[:1] = True
        np.not_equal(packed[1:], packed[:-1], out=first[1:])
        starts = np.flatnonzero(first)
        counts = np.diff(starts, append=packed.size)
        packed = packed[starts]
        idx = np.searchsorted(self.keys, packed)
        idx[idx == self.keys.size] = 0
        hit = self.keys[idx] == packed
        return idx[hit], counts[hit]

    def letters(self, raw: np.ndarray) -> int:
        return int(self.letter_weight[self.norm[raw]].sum(dtype=np.int64))

    # -- scoring -------------------------------------------------------------

    def classify(self, raw: np.ndarray) -> LanguageResult:
        if self.letters(raw) < MIN_LETTERS:
            return _UNDETERMINED
        rows, counts = self.rows(raw)
        if rows.size == 0:
            return _UNDETERMINED
        # Sum of count * log-likelihood per language.  einsum runs numpy's own
        # loop (no BLAS threads), so the float result is the same every run.
        score = np.einsum("i,ij->j", counts.astype(np.float32), self.loglik[rows])
        score = score.astype(np.float64)
        for lang, in_script in self.script_gates:
            if not in_script[rows].any():
                score[lang] = -np.inf
        z = (score - score.max()) / TEMPERATURE
        prob = np.exp(z)
        prob /= prob.sum()
        # Stable order: probability descending, then language order.
        top = np.argsort(-prob, kind="stable")[:N_CANDIDATES]
        if self.langs[top[0]] in _RELATIVES:
            result = self.relatives(raw, prob, top)
            if result is not None:
                return result
        candidates = tuple((self.langs[i], round(float(prob[i]), 6)) for i in top)
        code, confidence = candidates[0]
        return LanguageResult(code, confidence, candidates)

    def relatives(self, raw: np.ndarray, prob: np.ndarray, top: np.ndarray) -> LanguageResult | None:
        """The marker-word check of _RELATIVES for the answer ``top[0]``.

        Returns None when the evidence does not clearly favour another member
        of the group (the caller then keeps the profile result).
        """
        answer = self.langs[top[0]]
        members, markers = _RELATIVES[answer]
        text = raw.tobytes().decode("utf-32-le", "surrogatepass").lower()
        words = _WORD_RE.findall(text)
        support = dict.fromkeys(members, 0)
        for marker in markers:
            n = marker.count(words)
            if n:
                for lang in marker.langs:
                    support[lang] += n
        if max(support.values()) <= support[answer]:
            return None

        index = {lang: i for i, lang in enumerate(self.langs)}
        p = {lang: float(prob[index[lang]]) for lang in members if lang in index}
        mass = sum(p.values())
        # Log weights: prior (profile probability, or the answer's for a
        # member without a profile) times MARKER_ODDS per supporting marker.
        log_odds = math.log(MARKER_ODDS)
        logw = {}
        for lang in members:
            prior = p.get(lang, p[answer])
            logw[lang] = (math.log(prior) if prior > 0 else -math.inf) + support[lang] * log_odds
        # First of equals in member order, so the answer wins a tie with it.
        winner = max(members, key=logw.__getitem__)
        if winner == answer:
            return None
        peak = logw[winner]
        w = {lang: math.exp(v - peak) for lang, v in logw.items()}
        total = sum(w.values())
        new = {lang: mass * w[lang] / total for lang in members}

        others = [(self.langs[i], float(prob[i])) for i in top if self.langs[i] not in new]
        if others and others[0][1] >= new[winner]:
            return None
        rank = {lang: i for i, lang in enumerate(members)}
        pool = [(lang, round(q, 6)) for lang, q in new.items()] + [(c, round(q, 6)) for c, q in others]
        pool.sort(key=lambda c: (-c[1], c[0] != winner, rank.get(c[0], len(rank)), index.get(c[0], 0)))
        candidates = tuple(pool[:N_CANDIDATES])
        return LanguageResult(winner, candidates[0][1], candidates)


def _chars(n: int) -> str:
    """All code points below n as one string (lone surrogates included)."""
    return np.arange(n, dtype=np.uint32).tobytes().decode("utf-32-le", "surrogatepass")


def _codepoints(text: str) -> np.ndarray:
    # surrogatepass: arbitrary str (lone surrogates) must not raise.
    return np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)


def _pack(gram: str) -> int:
    key = 0
    for ch in gram:
        key = (key << _CP_BITS) | ord(ch)
    return key


# --- Sampling ---------------------------------------------------------------


def _window(text: str, start: int, end: int) -> str:
    """text[start:end], moved inward to whitespace so no word is cut."""
    chunk = text[start:end]
    if start > 0 and not text[start - 1].isspace():
        m = _WHITESPACE_RE.search(chunk, 0, SNAP_CHARS)
        if m:
            chunk = chunk[m.end() :]
    if end < len(text) and not text[end].isspace():
        m = _LAST_WHITESPACE_RE.search(chunk, max(0, len(chunk) - SNAP_CHARS))
        if m:
            chunk = chunk[: m.start()]
    return chunk


def _sample(model: _Model, text: str) -> np.ndarray:
    """Raw code points of a bounded sample of ``text`` (see module doc)."""
    if len(text) <= SAMPLE_CHARS:
        return model.prepare(text)
    # 2N-1 evenly spaced slots from the start to the end of the text.  The
    # even slots are the N windows we want (they never overlap, because the
    # text is longer than N windows); an odd slot next to one stands in for
    # it when it is mostly digits, markup or URLs.
    n_slots = 2 * N_WINDOWS - 1
    last = len(text) - WINDOW_CHARS
    starts = [last * i // (n_slots - 1) for i in range(n_slots)]
    seen: dict[int, tuple[np.ndarray, float]] = {}

    def slot(i: int) -> tuple[np.ndarray, float]:
        if i not in seen:
            raw = model.prepare(_window(text, starts[i], starts[i] + WINDOW_CHARS))
            seen[i] = (raw, model.letters(raw) / max(raw.size, 1))
        return seen[i]

    chosen: list[int] = []
    for primary in range(0, n_slots, 2):
        options = [i for i in (primary, primary + 1, primary - 1) if 0 <= i < n_slots and i not in chosen]
        pick = next((i for i in options if slot(i)[1] >= MIN_WINDOW_LETTER_RATIO), None)
        if pick is None:
            # Nothing good nearby: keep the least bad rather than nothing.
            pick = max(options, key=lambda i: slot(i)[1])
        chosen.append(pick)

    # Join with a space, as if the windows were consecutive words.
    sep = np.array([_SPACE], dtype=np.uint32)
    parts: list[np.ndarray] = []
    for i in sorted(chosen):
        parts += (slot(i)[0], sep)
    return np.concatenate(parts[:-1])


# --- Public API ---------------------------------------------------------------

_model: _Model | None = None
_model_lock = threading.Lock()


def _get_model() -> _Model:
    global _model
    if _model is None:
        with _model_lock:
            if _model is None:
                _model = _Model()
    return _model


def warm_up() -> None:
    """Load the profiles now (~0.2 s) rather than on the first article."""
    _get_model()


def detect_language(text: str) -> LanguageResult:
    """Detect the language of ``text``; deterministic, bounded cost."""
    if not text:
        return _UNDETERMINED
    model = _get_model()
    return model.classify(_sample(model, text))
