"""Twilio's XML representation (2010-04-01 paths without ``.json``): the same resources as
the JSON API, wrapped in ``<TwilioResponse>`` with CamelCase element names.

>>> to_xml({"sid": "SM1", "num_media": "0", "error_code": None}, "Message").decode()[16:]
'<Message><Sid>SM1</Sid><NumMedia>0</NumMedia><ErrorCode /></Message></TwilioResponse>'
>>> to_xml({"message": "bad \\x00"}, "RestException").count("\\ufffd".encode())
1
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import Any

# What XML 1.0 cannot carry (control characters, lone surrogates, U+FFFE/U+FFFF): a request
# value echoed in an answer (an invalid To in an error) must not make the document unreadable.
_NOT_XML = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")

LIST_ATTRIBUTES = ("end", "first_page_uri", "next_page_uri", "page", "page_size",
                   "previous_page_uri", "start", "uri")


def camel(name: str) -> str:
    """``date_created`` -> ``DateCreated``."""
    return "".join(part[:1].upper() + part[1:] for part in name.split("_"))


def to_xml(data: dict[str, Any], kind: str) -> bytes:
    """``kind`` is ``Message``, ``Messages`` (a page) or ``RestException`` (an error)."""
    root = ET.Element("TwilioResponse")
    if kind == "Messages":
        page = ET.SubElement(root, "Messages", {
            camel(k).lower(): "" if data.get(k) is None else str(data[k])
            for k in LIST_ATTRIBUTES})
        for item in data.get("messages", []):
            _fill(ET.SubElement(page, "Message"), item)
    else:
        _fill(ET.SubElement(root, kind), data)
    return ET.tostring(root, encoding="unicode").encode()


def _fill(element: ET.Element, data: dict[str, Any]) -> None:
    for key, value in data.items():
        child = ET.SubElement(element, camel(key))
        if isinstance(value, dict):
            _fill(child, value)
        elif value is not None:
            child.text = _NOT_XML.sub("\ufffd", str(value))
