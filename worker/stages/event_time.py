"""Event time: when an article happened, as far as we can trust what its producer says.

`parse_timestamp` reads a time leniently and completely, or says it is not one (None; it never
raises):

* JSON numbers and numeric strings are Unix epochs: seconds, or milliseconds when the absolute
  value is >= 1e11, microseconds when >= 1e14, nanoseconds when >= 1e17. One exception: an
  eight-digit string that is a valid YYYYMMDD date is that date (ISO-8601 basic format; as an
  epoch it would be a moment in 1970-73).
* ISO-8601 / RFC 3339 and their common variants: `Z` or `z`, `+02:00`, `+0200`, `+02`, a
  trailing ` UTC`/` GMT`, a space instead of `T`, fractional seconds of any length, the basic
  format `20250328T101500Z`, week dates, date-only `2025-03-28` and `2025/03/28`.
* RFC 2822 as RSS carries it (`Fri, 28 Mar 2025 10:15:00 GMT`, `+0000`, US zones such as EST or
  PDT, a few other common abbreviations such as CET/CEST/JST, with or without the weekday or
  the time of day).
* No zone means UTC; so does a zone abbreviation we do not know.
* Anything else is not a time: "yesterday", "2025-13-45", "", NaN, infinities, booleans, and
  moments outside the years 1800..9999.

`resolve_event_time` decides the article's event time from `published_at`, `ingested_at` and the
worker's own wall clock at arrival, which no input controls. With `limit = min(ingestion,
arrival) + max_future_skew_s`:

* ingestion time = `ingested_at` if it parses and is not after `arrival + skew`, else `arrival`;
* `published_at` parses and is <= limit          -> that time,      source "published";
* `published_at` parses but is later than limit  -> `limit`,        source "clamped", warning;
* `published_at` present but unparseable         -> ingestion time, source "ingested", warning;
* `published_at` missing (None or blank)         -> ingestion time, source "ingested", warning.

Where `published_at` is missing or unparseable, the page may still say when it was written
(`page_date`): a date in the URL path (`/2020/09/16/`, `/2020-09-16/`, `/20200916/`), source
"url", or else a dateline at the start of the text (`WASHINGTON, Sept. 16, 2020 (AP) —`,
`LONDON, 16 September 2020 -`, `2020-09-16 —`), source "dateline". Either is a day (00:00 UTC),
with a warning naming where it came from; one later than `limit` is not used (the ingestion time
stands in, as before).

A bad `ingested_at` adds its own note to the warning, whatever the source. The result is always
finite and <= arrival + skew: nothing an input says moves a clock beyond the wall clock plus the
skew.
"""

from __future__ import annotations

import email.utils
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

DEFAULT_MAX_FUTURE_SKEW_S = 86400.0

MIN_EPOCH = datetime(1800, 1, 1, tzinfo=UTC).timestamp()
MAX_EPOCH = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC).timestamp()

_WARN_CHARS = 80

_NUMERIC = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")
_BASIC_DATE = re.compile(r"([0-9]{4})([0-9]{2})([0-9]{2})")
_SLASH_DATE = re.compile(r"^([0-9]{4})/([0-9]{1,2})/([0-9]{1,2})(?=$|[Tt ])")
_ISO_UTC_SUFFIX = re.compile(r"(?:\s*(?:UTC|GMT)|[Zz])$", re.IGNORECASE)
_ISO_FRACTION = re.compile(r"([0-9][.,][0-9]{6})[0-9]+")
_TRAILING_ZONE = re.compile(r"\s([A-Za-z]{2,5})\s*$")
# Zone abbreviations email.utils does not know (it knows UT, UTC, GMT, Z and the US ones).
# Ambiguous ones (IST, CST in China, ...) are left out on purpose.
_EXTRA_ZONES = {
    "WET": "+0000", "WEST": "+0100", "BST": "+0100", "CET": "+0100", "CEST": "+0200",
    "MET": "+0100", "MEST": "+0200", "EET": "+0200", "EEST": "+0300", "MSK": "+0300",
    "HKT": "+0800", "SGT": "+0800", "JST": "+0900", "KST": "+0900", "AEST": "+1000",
    "AEDT": "+1100", "NZST": "+1200", "NZDT": "+1300", "HST": "-1000", "AKST": "-0900",
    "AKDT": "-0800",
}


def _in_range(epoch: float) -> float | None:
    return epoch if math.isfinite(epoch) and MIN_EPOCH <= epoch <= MAX_EPOCH else None


def _from_number(value: int | float) -> float | None:
    magnitude: float
    if isinstance(value, int):
        magnitude = abs(value)
        if magnitude >= 10**20:  # beyond any unit's range; also keeps float() from overflowing
            return None
        number = float(value)
    else:
        if not math.isfinite(value):
            return None
        number, magnitude = value, abs(value)
    if magnitude >= 1e17:
        number /= 1e9
    elif magnitude >= 1e14:
        number /= 1e6
    elif magnitude >= 1e11:
        number /= 1e3
    return _in_range(number)


def _from_datetime(moment: datetime) -> float | None:
    if not 1800 <= moment.year <= 9999:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        return _in_range(moment.timestamp())
    except (OverflowError, ValueError, OSError):
        return None


def _from_iso(text: str) -> float | None:
    text = _SLASH_DATE.sub(lambda m: f"{m[1]}-{int(m[2]):02d}-{int(m[3]):02d}", text, count=1)
    if not text[:4].isdigit():
        return None
    text = _ISO_UTC_SUFFIX.sub("+00:00", text)
    text = _ISO_FRACTION.sub(r"\1", text)  # datetime keeps microseconds; drop what is finer
    try:
        moment = datetime.fromisoformat(text)
    except (ValueError, OverflowError):
        return None
    return _from_datetime(moment)


def _from_rfc2822(text: str) -> float | None:
    zone = _TRAILING_ZONE.search(text)
    if zone and zone[1].upper() in _EXTRA_ZONES:
        text = text[:zone.start(1)] + _EXTRA_ZONES[zone[1].upper()]
    parts = _parsedate(text)
    if parts is None:  # date without a time of day: "28 Mar 2025", "Fri, 28 Mar 2025"
        parts = _parsedate(text + " 00:00:00")
    if parts is None:
        return None
    year, month, day, hour, minute, second = parts[:6]
    offset = parts[9] or 0
    leap = second == 60  # a leap second is the moment after :59
    try:
        moment = datetime(year, month, day, hour, minute, 59 if leap else second, tzinfo=UTC)
        moment -= timedelta(seconds=offset - (1 if leap else 0))
    except (ValueError, OverflowError, TypeError):
        return None
    return _from_datetime(moment)


def _parsedate(text: str) -> tuple[Any, ...] | None:
    try:
        return email.utils.parsedate_tz(text)
    except Exception:  # noqa: BLE001 - the stdlib parser has raised on odd input in the past
        return None


def parse_timestamp(value: str | int | float | None) -> float | None:
    """Epoch seconds (UTC) for a time in any accepted format, or None if `value` is not one."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return _from_number(value)
    if not isinstance(value, str):
        return None
    text = value.strip()
    if not text or len(text) > 200:
        return None
    try:
        if _NUMERIC.fullmatch(text):
            basic = _BASIC_DATE.fullmatch(text)
            if basic:
                try:
                    return _from_datetime(datetime(int(basic[1]), int(basic[2]), int(basic[3])))
                except ValueError:
                    pass
            if len(text) > 40:
                return None
            return _from_number(float(text) if "." in text else int(text))
        iso = _from_iso(text)
        return iso if iso is not None else _from_rfc2822(text)
    except Exception:  # noqa: BLE001 - a malformed time is "not a time", never a crash
        return None


Source = Literal["published", "ingested", "clamped", "url", "dateline"]

_MONTHS = {m: i + 1 for i, m in enumerate(("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct",
                                            "nov", "dec"))}
_URL_DATE = re.compile(r"/((?:19|20)[0-9]{2})([/_-]?)([01][0-9])\2([0-3][0-9])(?=/|$|[._-])")
_MONTH_NAME = (r"(jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|"
               r"sept?(?:ember)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?")
_DATELINE_MDY = re.compile(_MONTH_NAME + r"\s+([0-3]?[0-9]),?\s+((?:19|20)[0-9]{2})\b", re.IGNORECASE)
_DATELINE_DMY = re.compile(r"\b([0-3]?[0-9])\s+" + _MONTH_NAME + r",?\s+((?:19|20)[0-9]{2})\b", re.IGNORECASE)
_DATELINE_ISO = re.compile(r"\b((?:19|20)[0-9]{2})-([01][0-9])-([0-3][0-9])\b")
_DATELINE_CHARS = 120  # a dateline opens the text: only its first characters are looked at
_DATELINE_END = re.compile(r"\s[—–-]{1,2}\s|\(\w+\)")  # "WASHINGTON, Sept. 16, 2020 (AP) —"


def _day(year: int, month: int, day: int) -> float | None:
    try:
        return _from_datetime(datetime(year, month, day, tzinfo=UTC))
    except ValueError:
        return None


def url_date(url: object) -> float | None:
    """00:00 UTC of a date in the URL's path (`/2020/09/16/`, `/2020-09-16/`, `/20200916/`), or None."""
    if not isinstance(url, str) or not url:
        return None
    path = re.sub(r"^[a-zA-Z][a-zA-Z0-9+.-]*://[^/]*", "", url).split("?", 1)[0].split("#", 1)[0]
    for m in _URL_DATE.finditer(path):
        value = _day(int(m[1]), int(m[3]), int(m[4]))
        if value is not None:
            return value
    return None


def dateline_date(text: object) -> float | None:
    """00:00 UTC of the date in a dateline opening the text, or None. The date must come before the
    dateline's end (a dash or an agency in parentheses) within the first characters."""
    if not isinstance(text, str) or not text:
        return None
    head = text.lstrip()[:_DATELINE_CHARS]
    end = _DATELINE_END.search(head)
    if end is None:
        return None
    head = head[:end.end()]
    m = _DATELINE_MDY.search(head)
    if m:
        return _day(int(m[3]), _MONTHS[m[1][:3].lower()], int(m[2]))
    m = _DATELINE_DMY.search(head)
    if m:
        return _day(int(m[3]), _MONTHS[m[2][:3].lower()], int(m[1]))
    m = _DATELINE_ISO.search(head)
    if m:
        return _day(int(m[1]), int(m[2]), int(m[3]))
    return None


def page_date(url: object, text: object) -> tuple[float, Source] | None:
    """The date the page itself carries: its URL path first, then a dateline."""
    value = url_date(url)
    if value is not None:
        return value, "url"
    value = dateline_date(text)
    return None if value is None else (value, "dateline")


@dataclass(frozen=True, slots=True)
class EventTime:
    value: float  # epoch seconds, UTC
    source: Source
    warning: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"value": format_iso(self.value), "epoch": self.value, "source": self.source,
                "warning": self.warning}


def format_iso(epoch: float) -> str | None:
    """`2025-03-28T10:15:00.000Z`; None only for an epoch datetime cannot represent."""
    try:
        moment = datetime.fromtimestamp(epoch, UTC)
    except (OverflowError, ValueError, OSError):
        return None
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _show(value: object) -> str:
    """`value` for a warning: repr, at most ~80 characters of it."""
    try:
        if isinstance(value, str):
            return repr(value[:_WARN_CHARS] + "…") if len(value) > _WARN_CHARS else repr(value)
        text = repr(value)
    except Exception:  # noqa: BLE001 - e.g. an int too long to print, a structure too deep
        return f"<{type(value).__name__}>"
    return text[:_WARN_CHARS] + "…" if len(text) > _WARN_CHARS else text


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def resolve_event_time(published_at: object, ingested_at: object, arrival: float,
                       max_future_skew_s: float = DEFAULT_MAX_FUTURE_SKEW_S, *, url: object = None,
                       text: object = None) -> EventTime:
    """The article's event time. `arrival` is the worker's wall clock when it took the message;
    `url` and `text` (the normalised body) may carry a date when `published_at` does not.

    Never raises for any `published_at` / `ingested_at`; raises ValueError only for a
    non-finite `arrival` or a negative or non-finite skew (a caller's bug, not an input's).
    """
    if not math.isfinite(arrival):
        raise ValueError(f"arrival must be finite, got {arrival!r}")
    if not (math.isfinite(max_future_skew_s) and max_future_skew_s >= 0):
        raise ValueError(f"max_future_skew_s must be finite and >= 0, got {max_future_skew_s!r}")
    horizon = arrival + max_future_skew_s
    notes: list[str] = []

    ingestion = arrival
    if not _missing(ingested_at):
        parsed = parse_timestamp(ingested_at)  # type: ignore[arg-type]
        if parsed is None:
            notes.append(f"unparseable ingested_at: {_show(ingested_at)}; used arrival time")
        elif parsed > horizon:
            notes.append(f"ingested_at {_show(ingested_at)} is later than arrival plus "
                         f"{max_future_skew_s:g}s; used arrival time")
        else:
            ingestion = parsed
    limit = min(ingestion, arrival) + max_future_skew_s

    source: Source
    if _missing(published_at):
        value, source = ingestion, "ingested"
        notes.insert(0, "no published_at")
    else:
        published = parse_timestamp(published_at)  # type: ignore[arg-type]
        if published is None:
            value, source = ingestion, "ingested"
            notes.insert(0, f"unparseable published_at: {_show(published_at)}")
        elif published > limit:
            value, source = limit, "clamped"
            notes.insert(0, f"published_at {_show(published_at)} is more than {max_future_skew_s:g}s "
                            f"ahead of ingestion; clamped")
        else:
            value, source = published, "published"
    if source == "ingested":
        found = page_date(url, text)
        if found is not None and found[0] <= limit:
            value, source = found
            notes.insert(1, "date from the URL path" if source == "url" else "date from the dateline")
    return EventTime(value=value, source=source, warning="; ".join(notes) or None)
