"""Provider-style identifiers from a sandbox's random stream.

>>> import random
>>> ids = Ids(random.Random(1))
>>> ids.stripe("cus")[:4], len(ids.stripe("cus")), ids.twilio("SM")[:2], len(ids.twilio("SM"))
('cus_', 28, 'SM', 34)
"""

from __future__ import annotations

import random
import string
import uuid

BASE62 = string.digits + string.ascii_letters


class Ids:
    """Id generators. All draw from one ``random.Random``, so a seed fixes every id."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng

    def base62(self, n: int) -> str:
        return "".join(self._rng.choices(BASE62, k=n))

    def hex(self, n: int) -> str:
        return "".join(self._rng.choices("0123456789abcdef", k=n))

    def digits(self, n: int) -> str:
        return "".join(self._rng.choices(string.digits, k=n))

    def number(self, low: int, high: int) -> int:
        return self._rng.randint(low, high)

    def uuid(self) -> str:
        return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))

    def stripe(self, prefix: str, n: int = 24) -> str:
        """Stripe style: ``cus_`` + 24 base62 characters."""
        return f"{prefix}_{self.base62(n)}"

    def twilio(self, prefix: str) -> str:
        """Twilio style: a two-letter prefix + 32 hex digits (``SM...``, ``AC...``)."""
        return prefix + self.hex(32)

    def mailgun(self, domain: str) -> str:
        """Mailgun style message id: ``<20240101000000.abc123@domain>``."""
        return f"<{self.digits(14)}.{self.hex(16)}@{domain}>"
