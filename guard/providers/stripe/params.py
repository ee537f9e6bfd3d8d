"""Request parameters read the way Stripe reads them: form fields (or the query string of a
GET) nested ``a[b][0]``, every value a string until a parameter's type says otherwise.

Each reader raises the :class:`StripeError` Stripe answers for a bad value, naming the
parameter as Stripe spells it (``items[0][price]``), so a handler states what it needs
and gets typed values back.

>>> p = Params({"amount": "2000", "items": [{"price": "price_1"}], "capture": "false"})
>>> p.int("amount", required=True), p.items("items")[0].str("price"), p.bool("capture")
(2000, 'price_1', False)
>>> p.int("amount_x", required=True)
Traceback (most recent call last):
...
guard.providers.stripe.errors.StripeError: Missing required param: amount_x.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from guard.providers.stripe.errors import StripeError, invalid_param, missing_param

_INT = re.compile(r"^-?[0-9]+$")

# The reader methods are named str, int, bool; inside the class those names are the methods.
type Text = str
type Number = int
type Flag = bool


class Params:
    """Typed access to one level of (nested) Stripe parameters."""

    def __init__(self, data: dict[Text, Any] | None, prefix: Text = "") -> None:
        self.data = data if isinstance(data, dict) else {}
        self.prefix = prefix

    def name(self, key: Text) -> Text:
        return f"{self.prefix}[{key}]" if self.prefix else key

    def has(self, key: Text) -> Flag:
        return key in self.data

    def raw(self, key: Text) -> Any:
        return self.data.get(key)

    def keys(self) -> Iterable[Text]:
        return self.data.keys()

    def _present(self, key: Text, required: Flag) -> Flag:
        if key not in self.data:
            if required:
                raise missing_param(self.name(key))
            return False
        if self.data[key] == "" and required:
            raise empty_value(self.name(key))
        return True

    def str(self, key: Text, *, required: Flag = False,
            default: Text | None = None) -> Text | None:
        """A string; an empty string means "unset" (``None``), as in Stripe."""
        if not self._present(key, required):
            return default
        value = self.data[key]
        if not isinstance(value, str):
            raise invalid_param(self.name(key), f"Invalid string: {_show(value)}")
        return value or None

    def int(self, key: Text, *, required: Flag = False, default: Number | None = None,
            minimum: Number | None = None) -> Number | None:
        if not self._present(key, required):
            return default
        value = self.data[key]
        if value == "":
            return None
        if not isinstance(value, str) or not _INT.match(value):
            raise invalid_param(self.name(key), f"Invalid integer: {_show(value)}",
                                "parameter_invalid_integer")
        number = int(value)
        if minimum is not None and number < minimum:
            raise invalid_param(self.name(key), "This value must be greater than or equal to "
                                f"{minimum}.", "parameter_invalid_integer")
        return number

    def bool(self, key: Text, *, default: Flag | None = None) -> Flag | None:
        if key not in self.data or self.data[key] == "":
            return default
        value = self.data[key]
        if value in ("true", "false"):
            return bool(value == "true")
        raise invalid_param(self.name(key), f"Invalid boolean: {_show(value)}")

    def enum(self, key: Text, choices: Iterable[Text], *, required: Flag = False,
             default: Text | None = None) -> Text | None:
        value = self.str(key, required=required, default=default)
        options = sorted(choices)
        if value is not None and value not in options:
            listed = ", ".join(options[:-1]) + f", or {options[-1]}" if len(options) > 1 \
                else options[0]
            raise invalid_param(self.name(key), f"Invalid {self.name(key)}: must be one of "
                                f"{listed}")
        return value

    def sub(self, key: Text) -> Params:
        value = self.data.get(key)
        if value not in (None, "") and not isinstance(value, dict):
            raise invalid_param(self.name(key), f"Invalid object: {_show(value)}")
        return Params(value if isinstance(value, dict) else {}, self.name(key))

    def items(self, key: Text, *, required: Flag = False) -> list[Params]:
        """A list of objects (``items[0][price]=...``)."""
        if not self._present(key, required):
            return []
        value = self.data[key]
        if value == "":
            return []
        if isinstance(value, dict):  # items[x][price] with non-numeric keys
            value = list(value.values())
        if not isinstance(value, list):
            raise invalid_param(self.name(key), f"Invalid array: {_show(value)}")
        return [Params(v if isinstance(v, dict) else {}, f"{self.name(key)}[{i}]")
                for i, v in enumerate(value)]

    def strings(self, key: Text) -> list[Text] | None:
        """A list of strings (``expand[]=a&expand[]=b`` or ``expand[0]=a``)."""
        if key not in self.data:
            return None
        value = self.data[key]
        if value == "":
            return []
        if isinstance(value, str):
            return [value]
        if isinstance(value, dict):
            value = list(value.values())
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise invalid_param(self.name(key), f"Invalid array: {_show(value)}")
        return list(value)

    def metadata(self, current: dict[Text, Text] | None = None) -> dict[Text, Text]:
        """``metadata[k]=v`` merged into ``current``; ``metadata[k]=`` removes a key and
        ``metadata=`` clears them all, as in Stripe."""
        out = dict(current or {})
        if "metadata" not in self.data:
            return out
        value = self.data["metadata"]
        if value == "":
            return {}
        if not isinstance(value, dict):
            raise invalid_param("metadata", "Invalid object")
        for k, v in value.items():
            if not isinstance(v, str):
                raise invalid_param(f"metadata[{k}]", f"Invalid string: {_show(v)}")
            if v == "":
                out.pop(k, None)
            else:
                out[k] = v
        return out


def empty_value(name: str) -> StripeError:
    return invalid_param(name, f"You passed an empty string for '{name}'. We assume empty "
                         "values are an attempt to unset a parameter; however "
                         f"'{name}' cannot be unset. You should remove '{name}' from your "
                         "request or supply a non-empty value.", "parameter_invalid_empty")


def _show(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return "an object" if isinstance(value, dict) else "an array"
    return str(value)
