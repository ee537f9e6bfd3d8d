"""What a secret looks like: header and field names, token shapes, payment card numbers.

Kept apart from :mod:`guard.audit.redact` (which decides *where* to look) so the
catalogue can be read and extended on its own. Token patterns keep the provider's
public prefix (``sk_live_``, ``SG.``, ``xoxb-``...): it says what kind of key was
used, which matters to an auditor and to rules replayed later, and is not secret.

>>> bool(is_secret_name("new_password")), bool(is_secret_name("idempotency_key"))
(True, False)
>>> luhn_ok("4242424242424242"), luhn_ok("4242424242424241")
(True, False)
"""

from __future__ import annotations

import functools
import re

MARK = "[REDACTED"  # every redaction marker starts with this

SECRET_HEADER = re.compile(
    r"(^|-)(authorization|cookie|set-cookie|api-?key|apikey|token|secret|password|passwd|"
    r"signature|auth|session|credential|credentials|private-key)($|-)"
    r"|^x-amz-security-token$",
    re.IGNORECASE,
)

# Field names (JSON keys, form fields, query parameters) whose value is a secret,
# matched after lower-casing and turning dashes into underscores.
_SECRET_NAME = re.compile(
    r"password|passwd|passphrase|secret|(^|_)pwd$|token$|tokens$|api_?key$|private_?key$"
    r"|^(cvc|cvv|cvc2|cvv2|csc)$|^auth$|^authorization$|^signature$|^sig$|^key$"
    r"|^x_amz_(signature|credential|security_token)$|^session(_?id)?$"
)


def is_secret_header(name: str) -> bool:
    return SECRET_HEADER.search(name) is not None


@functools.lru_cache(maxsize=4096)
def is_secret_name(name: str) -> bool:
    """A field whose value is a secret. Stripe-style nesting counts by its last part:
    ``card[cvc]`` is secret because ``cvc`` is."""
    if "[" in name:
        name = name.rstrip("]").rsplit("[", 1)[-1] or name
    return _SECRET_NAME.search(name.lower().replace("-", "_")) is not None


# Tokens with a recognisable shape. Group "keep" is the public prefix kept in the log.
TOKEN = re.compile(
    r"(?P<keep>\b(?:sk|rk)_(?:live|test)_)[0-9A-Za-z]{8,}"          # Stripe secret/restricted
    r"|(?P<keep2>\bwhsec_)[0-9A-Za-z+/=]{16,}"                      # Stripe webhook secret
    r"|(?P<keep3>\bSG\.)[\w-]{10,}\.[\w-]{10,}"                     # SendGrid
    r"|(?P<keep4>\bxox[abposre]-)[0-9A-Za-z-]{10,}"                 # Slack
    r"|(?P<keep5>\bxapp-)[0-9A-Za-z-]{10,}"                         # Slack app token
    r"|(?P<keep6>\bgh[pousr]_)[A-Za-z0-9]{20,}"                     # GitHub tokens
    r"|(?P<keep7>\bgithub_pat_)[A-Za-z0-9_]{20,}"                   # GitHub fine-grained
    r"|(?P<keep8>\b(?:AKIA|ASIA))[A-Z0-9]{16}\b"                    # AWS access key id
    r"|(?P<keep9>\bkey-)[0-9a-zA-Z]{32}\b"                          # Mailgun (legacy)
    r"|(?P<keep10>\beyJ)[\w-]{8,}\.eyJ[\w-]{8,}\.[\w-]{8,}"          # JWT
    r"|(?P<keep11>(?:X-Amz-)?Signature=)[0-9a-fA-F]{64}\b"          # AWS SigV4 signature
    r"|(?P<keep12>\b[Bb]earer\s+)[A-Za-z0-9._~+/=-]{8,}"            # bearer tokens in text
    r"|(?P<keep13>hooks\.slack\.com/(?:services|workflows|triggers)/)[\w/-]{8,}"  # webhooks
    r"|(?P<keep14>\b[a-z][a-z0-9+.-]*://[^/\s:@\"']+:)[^/\s@\"']+(?=@)"  # URL user:password@
    r"|(?P<keep15>-----BEGIN [A-Z ]*PRIVATE KEY-----)[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----"
    r"|(?P<keep16>\bgsk_)[\w.-]{8,}",                                # guard sandbox tokens
)

# name=value / "name": "value" pairs in free text (log lines, XML-ish, broken JSON).
KEY_VALUE = re.compile(
    r"(?P<name>[\"']?[\w-]*(?:password|passwd|secret|token|api_?key|apikey)[\w-]*[\"']?"
    r"\s*[:=]\s*[\"']?)(?P<value>[^\"'\s&,;}<]{1,512})",
    re.IGNORECASE,
)

# Multipart form fields with a secret name: the value runs to the next boundary line.
MULTIPART_FIELD = re.compile(
    r"(?P<head>Content-Disposition:[^\r\n]*\bname=\"(?P<name>[^\"]+)\"[^\r\n]*\r?\n"
    r"(?:[^\r\n]+\r?\n)*\r?\n)(?P<value>.*?)(?=\r?\n--)",
    re.IGNORECASE | re.DOTALL,
)

# Card numbers: 13-19 digits, single spaces or dashes between groups allowed.
CARD = re.compile(r"(?<![\d])[2-6](?:[ -]?\d){12,18}(?![\d])")

# A necessary condition for TOKEN, KEY_VALUE or CARD to match anywhere in a text: every
# alternative of those patterns contains one of these. Most values an audit event holds
# (ids, amounts, names) contain none, and are then scanned once instead of three times.
# tests/audit/test_audit_redact.py keeps it in step with the patterns above.
MAYBE_SECRET = re.compile(
    r"sk_|rk_|whsec_|SG\.|xox|xapp-|gh[pousr]_|github_pat_|AKIA|ASIA|key-|eyJ|Signature="
    r"|bearer|hooks\.slack|://|-----BEGIN|password|passwd|secret|token|api_?key|gsk_"
    r"|\d(?:[ -]?\d){12}",
    re.IGNORECASE,
)
MIN_SECRET_TEXT = 7  # the shortest text any of the patterns can match ("token=x")


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
    if 13 <= len(digits) <= 19 and digits.isdigit() and digits[0] in "23456" \
            and luhn_ok(digits):
        return digits
    return None
