"""The article id rule, written once: the seeder, `ingest enrich` and the worker all derive ids here.

An article that arrives without an id gets one that depends only on what it says, so the same
record sent twice (a redelivery, a replayed archive) gets the same id and is recognised as a
redelivery rather than as a new article:

    url      "art-" + xxh3-128(normalised URL)            when the record has an http(s) URL
    content  "art-" + xxh3-128(source, title, body)       otherwise (whitespace folded, source
                                                          case-folded); the HTML when there is
                                                          no body

`salt` (`ingest seed --new-ids`) makes a different id for the same record. The URL is normalised
here, not by a library, so that no dependency upgrade can ever change an id.
"""

from __future__ import annotations

import re
from typing import Literal
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

import xxhash

from worker.stages.normalise import fold_whitespace

IdSource = Literal["sent", "key", "url", "content"]
DERIVED: tuple[IdSource, ...] = ("url", "content")

# Query parameters that track the click, not the page: dropped from the URL before hashing.
_TRACKING = re.compile(r"^(?:utm_\w*|fbclid|gclid|gclsrc|dclid|msclkid|yclid|mc_cid|mc_eid|igshid|"
                       r"_ga|_gl|_hsenc|_hsmi|mkt_tok|vero_id|oly_anon_id|oly_enc_id|wt_mc|cmpid|ocid)$",
                       re.IGNORECASE)
_ESCAPE = re.compile(r"%([0-9A-Fa-f]{2})")
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_DEFAULT_PORTS = {"http": 80, "https": 443}


def _escapes(text: str) -> str:
    """One spelling of a percent-encoded path: non-ASCII and unsafe characters escaped, escapes
    of unreserved characters decoded, the others upper-cased (RFC 3986 section 6.2.2)."""
    text = quote(text, safe="!$&'()*+,/:;=@~%-._")

    def one(match: re.Match[str]) -> str:
        char = chr(int(match.group(1), 16))
        return char if char in _UNRESERVED else "%" + match.group(1).upper()

    return _ESCAPE.sub(one, text)


def normalise_url(url: str) -> str | None:
    """The URL as the id sees it: no scheme (http and https are one page), host lower-cased
    without `www.`, no default port, no fragment, no tracking parameters (utm_*, fbclid, gclid,
    ...), the other query parameters sorted, one spelling of percent-escapes, no trailing slash.
    None when it is not an absolute http(s) URL (then the content rule applies)."""
    try:
        parts = urlsplit(url.strip())
        host = (parts.hostname or "").rstrip(".")
        port = parts.port
    except ValueError:  # a bracketed host that is no IPv6 address, a port out of range
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not host:
        return None
    if host.startswith("www."):
        host = host[4:]
    netloc = host if port in (None, _DEFAULT_PORTS[scheme]) else f"{host}:{port}"
    path = _escapes(parts.path).rstrip("/")
    query = sorted((k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not _TRACKING.match(k))
    return netloc + path + ("?" + urlencode(query, quote_via=quote) if query else "")


def content_id(source: str, title: str, body: str, salt: str = "") -> str:
    """The content rule: the same source and text give the same id; `salt` makes a new one."""
    text = f"{salt}\x1f{source.strip().lower()}\x1f{fold_whitespace(title)}\x1f{fold_whitespace(body)}"
    return "art-" + xxhash.xxh3_128_hexdigest(text.encode("utf-8", "surrogatepass"))[:24]


def url_id(normalised_url: str, salt: str = "") -> str:
    """The URL rule, over `normalise_url`'s result."""
    text = f"{salt}\x1furl\x1f{normalised_url}"
    return "art-" + xxhash.xxh3_128_hexdigest(text.encode("utf-8", "surrogatepass"))[:24]


def derive_id(url: str, source: str, title: str, body: str, salt: str = "") -> tuple[str, IdSource]:
    """The id of a record that came without one, and which rule made it ("url" or "content")."""
    normalised = normalise_url(url) if url else None
    if normalised is not None:
        return url_id(normalised, salt), "url"
    return content_id(source, title, body, salt), "content"
