"""What a secret looks like: header and field names, token shapes, payment card numbers.

Kept apart from :mod:`guard.audit.redact` (which decides *where* to look) so the
catalogue can be read and extended on its own. Token shapes keep the provider's
public prefix (``sk_live_``, ``SG.``, ``xoxb-``...): it says what kind of key was
used, which matters to an auditor and to rules replayed later, and is not secret.

Speed and safety: every pattern runs in time linear in its input (no repetition can
re-scan what another has read: runs are bounded or separated by a literal), and
each shape starts with a literal that is looked for with ``in`` first, so a text
without it costs one substring search. tests/audit/test_audit_redact_linear.py
holds them to it.

>>> bool(is_secret_name("new_password")), bool(is_secret_name("idempotency_key"))
(True, False)
>>> bool(is_secret_name("accessKey")), bool(is_secret_name("lookup_key"))
(True, False)
>>> luhn_ok("4242424242424242"), luhn_ok("4242424242424241")
(True, False)
"""

from __future__ import annotations

import functools
import math
import re
from collections import Counter
from dataclasses import dataclass

MARK = "[REDACTED"  # every redaction marker starts with this
# A whole marker, with the public prefix it may keep: a value that is one is left alone
# (it was redacted already, by the outbox or an earlier pass). Anything else that merely
# contains "[REDACTED" is redacted like any other value.
MARKER = re.compile(r"[\w.\-:/ ]{0,64}\[REDACTED:(?:card:\d{4}:)?[0-9a-f]{8}\]"
                    r"(?:/[\w.-]{1,64}){0,8}")  # and a SigV4 credential scope after a key id

# Header names, lower-cased with "_" turned into "-". A header whose last part is "key"
# (Ocp-Apim-Subscription-Key, DD-APPLICATION-KEY, X-Access-Key) is secret unless it is one
# of the few well-known non-secret ones.
SECRET_HEADER = re.compile(
    r"(^|-)(authorization|authentication|cookie|set-cookie|api-?key|apikey|token|secret|"
    r"password|passwd|passphrase|pass|pwd|signature|auth|session|credential|credentials|"
    r"private-key|key)($|-)"
    r"|key$|token$|secret$",
)
_PUBLIC_HEADERS = frozenset({
    "idempotency-key", "x-idempotency-key", "sec-websocket-key", "public-key-pins",
    "public-key-pins-report-only", "key-id", "x-key-id", "access-control-allow-credentials",
})


@functools.lru_cache(maxsize=4096)
def is_secret_header(name: str) -> bool:
    """A header whose whole value is a secret.

    >>> [is_secret_header(h) for h in ("Ocp-Apim-Subscription-Key", "Api_Key", "Accept")]
    [True, True, False]
    """
    low = name.lower().replace("_", "-")
    return low not in _PUBLIC_HEADERS and SECRET_HEADER.search(low) is not None


# Field names (JSON keys, form fields, query parameters) whose value is a secret, matched
# after camelCase is split, lower-casing and turning dashes and dots into underscores.
_SECRET_NAME = re.compile(
    r"password|passwd|passphrase|passcode|secret|(^|_)(pwd|pass)$|token$|tokens$"
    r"|(^|_)credentials?$|^creds?$|api_?key$|private_?key$"
    r"|(access|secret|application|app|subscription|license|licence|master|client|auth|account"
    r"|signing|encryption|service|admin|ingest|server|write|read|bot|user|partner|merchant"
    r"|storage|shared|webhook)_?key$"
    r"|^(cvc|cvv|cvc2|cvv2|csc|pin)$|^auth$|^authorization$|^authentication$|^signature$|^sig$"
    r"|(^|_)key$|^x_amz_(signature|credential|security_token)$|^session(_?id)?$"
)
# Names ending in "key" that name something, not a secret.
_PUBLIC_NAMES = frozenset({
    "idempotency_key", "lookup_key", "object_key", "sort_key", "partition_key",
    "primary_key", "foreign_key", "cache_key", "public_key", "routing_key", "dedup_key",
    "dedupe_key", "deduplication_key", "hash_key", "range_key", "group_key", "message_key",
    "unique_key", "s3_key", "file_key", "publishable_key", "translation_key", "i18n_key",
    "issue_key", "project_key", "event_key", "row_key", "map_key",
})
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


@functools.lru_cache(maxsize=4096)
def is_secret_name(name: str) -> bool:
    """A field whose value is a secret. Stripe-style nesting counts by its last part:
    ``card[cvc]`` is secret because ``cvc`` is."""
    if "[" in name:
        name = name.rstrip("]").rsplit("[", 1)[-1] or name
    if len(name) > 200:
        return False
    low = _CAMEL.sub("_", name).lower().replace("-", "_").replace(".", "_")
    if low in _PUBLIC_NAMES:
        return False
    return _SECRET_NAME.search(low) is not None


@dataclass(frozen=True)
class Shape:
    """A token shape: ``triggers`` are literals one of which every match contains (looked
    for with ``in`` before the pattern runs); the pattern's group ``keep`` is the public
    prefix kept in the log."""

    name: str
    triggers: tuple[str, ...]
    pattern: re.Pattern[str]


def _shape(name: str, literal: str, rest: str, *, word: bool = True,
           keep: str = "") -> Shape:
    """``literal`` then ``rest``; ``word``: the literal starts a word (checked by a
    lookbehind after it, so the pattern still starts with the literal the regex engine
    searches for quickly). ``keep``: what follows the literal in the kept prefix."""
    lit = re.escape(literal)
    boundary = f"(?<!\\w{lit})" if word else ""
    return Shape(name, (literal,), re.compile(f"(?P<keep>{lit}{boundary}{keep}){rest}"))


# The distinctive prefixes match a key of any length ("Bearer sk_live_123" keeps
# "sk_live_"), so a replayed rule about the kind of key sees the same kind.
SHAPES: tuple[Shape, ...] = (
    # URL user:password@ first: the password may have any shape.
    Shape("url credentials", ("://",), re.compile(
        r"(?P<keep>://(?<=[A-Za-z0-9+.-]://)[^/\s:@\"']{1,256}:)[^/\s@\"']{1,256}(?=@)")),
    Shape("pem private key", ("-----BEGIN",), re.compile(
        r"(?P<keep>-----BEGIN [A-Z ]{0,40}PRIVATE KEY-----)"
        r"(?:[^-]{0,16384}-----END [A-Z ]{0,40}PRIVATE KEY-----|[\s\S]*)")),
    # a PEM key that never ends is redacted to the end of what is scanned
    Shape("bearer", ("earer", "EARER"), re.compile(
        r"(?P<keep>[Bb](?<!\w[Bb])(?:earer|EARER)[ \t]{1,8})[A-Za-z0-9._~+/=-]{8,}")),
    _shape("stripe secret key", "sk_", r"[0-9A-Za-z]+", keep="(?:live|test)_"),
    _shape("stripe restricted key", "rk_", r"[0-9A-Za-z]+", keep="(?:live|test)_"),
    _shape("stripe webhook secret", "whsec_", r"[0-9A-Za-z+/=]+"),
    Shape("stripe client secret", ("_secret_",), re.compile(
        r"(?<![\w])(?P<keep>(?:pi|seti)_[0-9A-Za-z]{8,64}_secret_)[0-9A-Za-z]+")),
    _shape("sendgrid", "SG.", r"[\w-]{10,}\.[\w-]{10,}"),
    _shape("slack", "xox", r"[0-9A-Za-z-]{6,}", keep="[abposrec]-"),
    _shape("slack app", "xapp-", r"[0-9A-Za-z-]{6,}"),
    _shape("github", "gh", r"[A-Za-z0-9]{4,}", keep="[pousr]_"),
    _shape("github fine-grained", "github_pat_", r"[A-Za-z0-9_]{4,}"),
    _shape("gitlab", "gl", r"[\w-]+", keep="(?:pat|dt|rt|ptt|soat|cbt|imt|ffct|oas|agent)-"),
    _shape("anthropic", "sk-ant-", r"[\w-]+", keep=r"[a-z]{2,8}\d\d-"),
    _shape("openai project", "sk-", r"[\w-]+", keep="(?:proj|svcacct|admin|None)-"),
    _shape("openai", "sk-", r"[A-Za-z0-9]{20,}"),
    _shape("google api key", "AIza", r"[\w-]{30,}"),
    _shape("google oauth", "ya29.", r"[\w-]{20,}"),
    _shape("npm", "npm_", r"[A-Za-z0-9]{30,}"),
    _shape("hugging face", "hf_", r"[A-Za-z0-9]{30,}"),
    _shape("shopify", "shp", r"[0-9a-fA-F]{16,}", keep="(?:at|ca|pa|ss)_"),
    _shape("pypi", "pypi-", r"[\w-]{50,}"),
    _shape("digitalocean", "dop_v1_", r"[0-9a-f]{32,}"),
    _shape("linear", "lin_", r"[0-9A-Za-z]{20,}", keep="(?:api|oauth)_"),
    _shape("postman", "PMAK-", r"[0-9A-Za-z-]{20,}"),
    _shape("atlassian", "ATATT", r"[\w=-]{20,}"),
    _shape("sentry", "sntr", r"[\w=+/-]{20,}", keep="[ysu]_"),
    _shape("databricks", "dapi", r"[0-9a-f]{32}\b"),
    _shape("square", "sq0", r"[\w-]{20,}", keep="(?:atp|csp|idp)-"),
    _shape("age", "AGE-SECRET-KEY-1", r"[0-9A-Z]{20,}"),
    Shape("telegram bot token", (":",), re.compile(r"(?P<keep>:(?<=\d{5}:))[\w-]{30,}")),
    _shape("aws access key id", "AKIA", r"[A-Z0-9]{16}\b"),
    _shape("aws temporary key id", "ASIA", r"[A-Z0-9]{16}\b"),
    _shape("mailgun", "key-", r"[0-9a-zA-Z]{32}\b"),
    _shape("jwt", "eyJ", r"[\w-]{8,}\.eyJ[\w-]{8,}\.[\w-]{8,}"),
    _shape("aws sigv4 signature", "Signature=", r"[0-9a-fA-F]{64}\b", word=False),
    _shape("slack webhook", "hooks.slack.com/", r"[\w/-]{8,}", word=False,
           keep="(?:services|workflows|triggers)/"),
    _shape("discord webhook", "discord", r"[\w-]{8,}",
           keep=r"(?:app)?\.com/api/webhooks/\d{1,24}/"),
    _shape("guard sandbox token", "gsk_", r"[\w.-]{8,}"),
)

# The same prefixes, for a value already known to be a secret (an Authorization header,
# a field named password): kept however short the rest is.
PREFIX = re.compile(
    r"(?:sk|rk)_(?:live|test)_|whsec_|SG\.|xox[abposrec]-|xapp-|gh[pousr]_|github_pat_"
    r"|gl(?:pat|dt|rt|ptt|soat|cbt|imt|ffct|oas|agent)-|sk-ant-[a-z]{2,8}\d\d-"
    r"|sk-(?:proj|svcacct|admin|None)-|sk-|AIza|ya29\.|npm_|hf_|shp(?:at|ca|pa|ss)_|pypi-"
    r"|dop_v1_|lin_(?:api|oauth)_|PMAK-|ATATT|sntr[ysu]_|dapi|sq0(?:atp|csp|idp)-"
    r"|AGE-SECRET-KEY-1|AKIA|ASIA|key-|eyJ|gsk_"
)

# name=value / "name": "value" pairs in free text (log lines, XML-ish, broken JSON),
# matched on the lower-cased text. The name is found by its keyword, never by scanning
# back over a run of word characters. ``KEY_VALUE_WORDS`` must each be in the text.
KEY_VALUE_WORDS = ("pass", "pwd", "secret", "token", "key", "credential", "auth", "sig")
KEY_VALUE = re.compile(
    r"(?P<name>(?:(?:password|passwd|passphrase|secret|token|api[_-]?key|access[_-]?key"
    r"|account[_-]?key|private[_-]?key|credentials?|pwd)[\w-]{0,40}"
    r"|(?<![\w-])(?:pass|auth|key|sig))[\"']?[ \t]{0,8}[:=][ \t]{0,8}[\"']?)"
    r"(?P<value>[^\"'\s&,;}<>]+)",
)

# "name": value pairs of a JSON text that could not be parsed (cut at the size limit, or
# nested too deeply): the value of a secret-named field is replaced as in parsed JSON.
JSON_PAIR = re.compile(
    r'(?P<head>"(?P<name>[^"\\\n]{1,64})"[ \t\r\n]{0,8}:[ \t\r\n]{0,8})'
    r'(?P<value>"(?:[^"\\\n]|\\.){0,8192}"?|-?\d[\d.eE+-]{0,40})'
)

# Card numbers: 13-19 digits, single spaces or dashes between groups allowed. Starts with
# its first digit (a character class the engine skips to quickly).
CARD = re.compile(r"[2-6](?<!\d[2-6])(?:[ -]?\d){12,18}(?!\d)")

# Tokens without a known prefix: an AWS secret access key (40 characters of base64's
# alphabet) and other long random-looking runs; :func:`looks_random` decides.
AWS_SECRET = re.compile(r"[A-Za-z0-9+/](?<![A-Za-z0-9+/=][A-Za-z0-9+/])[A-Za-z0-9+/]{39}"
                        r"(?![A-Za-z0-9+/=])")
RANDOM_RUN = re.compile(r"[A-Za-z0-9_+-](?<![\w+=-][A-Za-z0-9_+-])[A-Za-z0-9_+-]{23,127}"
                        r"={0,2}(?![\w+=-])")
MIN_RANDOM = 24
MIN_SECRET_TEXT = 5  # the shortest text any of the patterns can match ("key=x")


def looks_random(run: str) -> bool:
    """A run of token characters that is most likely a generated secret, not an id, a hash
    or a word: upper and lower case and digits mixed, near the entropy of random base62.

    >>> looks_random("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
    True
    >>> [looks_random(s) for s in ("cus_NffrFeUfNV2HibNffrFeUfNV2Hib", "ThisIsMyVeryLongName2",
    ...                            "11f6ad8ec52a2984abaafd7c3b516503785c2072")]
    [False, False, False]
    """
    core = run.rstrip("=")
    n = len(core)
    if n < MIN_RANDOM or core.startswith("/") or core.count("/") > 3:
        return False
    if _ID.match(core) or _HEXISH.fullmatch(core):
        return False
    upper = sum(c.isupper() for c in core)
    lower = sum(c.islower() for c in core)
    digits = sum(c.isdigit() for c in core)
    if not (upper and lower):
        return False
    base64_40 = n == 40 and ("/" in core or "+" in core or digits)
    if not base64_40:
        if digits < 2:
            return False
        vowels = sum(c in "aeiouAEIOU" for c in core)
        if vowels > 0.3 * (upper + lower):  # words, however they are glued together
            return False
    entropy = -sum(c / n * math.log2(c / n) for c in Counter(core).values())
    return entropy >= min(4.3, math.log2(n) - 0.95)


# An identifier with a type prefix (cus_..., pi_..., I_kwDO...) or hex with a short letter
# prefix (Twilio SM..., UUIDs, hashes) is not a secret.
_ID = re.compile(r"[A-Za-z]{1,12}(?:_[A-Za-z]{1,12})?_[A-Za-z0-9]+$")
_HEXISH = re.compile(r"[A-Za-z]{0,4}[-_]?[0-9a-fA-F-]+")


def luhn_ok(digits: str) -> bool:
    """The Luhn checksum every payment card number carries."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def card_digits(text: str) -> str | None:
    """The digits of ``text`` when it is a plausible, Luhn-valid card number."""
    digits = text.replace(" ", "").replace("-", "")
    if 13 <= len(digits) <= 19 and digits.isascii() and digits.isdigit() \
            and digits[0] in "23456" and luhn_ok(digits):
        return digits
    return None
