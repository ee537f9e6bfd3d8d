"""The account's phone numbers (``/Accounts/{AC}/IncomingPhoneNumbers``): what a From
number is, and what the agent can look up.

Open world (:mod:`guard.synth.openworld`): numbers are bought outside the agent's doing, so
a number the agent names (a From number, a full E.164 ``PhoneNumber`` filter) or a ``PN`` sid
it is configured with is one of the account's on first reference (collection
``twilio_numbers``, keyed by the E.164 number: a ``PN`` sid, a friendly name, SMS/MMS/voice,
bought a while ago), kept. A sid names no number, so its number is drawn from the
fictional ``555-01xx`` range. In a strict world only what the world holds exists; another
account's number is not this account's either way.
"""

from __future__ import annotations

import re
from datetime import timedelta
from email.utils import format_datetime
from typing import Any
from urllib.parse import urlencode

from guard.request import Response
from guard.synth import openworld
from guard.synth.context import SimContext
from guard.synth.handlers import handler

NUMBERS = "twilio_numbers"
SID = re.compile(r"PN[0-9a-fA-F]{32}")
E164 = re.compile(r"\+[1-9][0-9]{7,14}")


def _bought(ctx: SimContext, account: str, number: str, sid: str | None = None
            ) -> dict[str, Any]:
    national = number[2:] if number.startswith("+1") and len(number) == 12 else ""
    friendly = f"({national[:3]}) {national[3:6]}-{national[6:]}" if national else number
    days = ctx.world.rng.randint(30, 700)  # bought a while ago, outside the agent's doing
    created = format_datetime(ctx.world.clock.now() - timedelta(days=days))
    return {"sid": sid or ctx.ids.twilio("PN"), "account_sid": account, "phone_number": number,
            "friendly_name": friendly, "capabilities": {"voice": True, "sms": True,
                                                        "mms": True, "fax": False},
            "status": "in-use", "date_created": created, "date_updated": created,
            "api_version": "2010-04-01"}


def own_number(ctx: SimContext, account: str, number: str) -> dict[str, Any] | None:
    """The account's phone number ``number`` (E.164), made on first use in an open world;
    None when the world does not hold it (strict) or it is another account's."""
    found = openworld.referenced(ctx.world, ctx.options, NUMBERS, number,
                                 lambda: _bought(ctx, account, number))
    if found is None or found.get("account_sid", account) != account:
        return None
    return found


def _by_sid(ctx: SimContext, account: str, sid: str) -> dict[str, Any] | None:
    found = next((n for n in ctx.world.list(NUMBERS) if n.get("sid") == sid), None)
    if found is None and not openworld.strict(ctx.world, ctx.options):
        number = ""
        while not number or ctx.world.get(NUMBERS, number) is not None:
            number = f"+1{ctx.world.rng.randint(201, 989)}55501{ctx.ids.digits(2)}"
        found = ctx.world.put(NUMBERS, _bought(ctx, account, number, sid), number)
    if found is None or found.get("account_sid", account) != account:
        return None
    return found


def resource(number: dict[str, Any], account: str) -> dict[str, Any]:
    """The IncomingPhoneNumber resource as the SDK reads it: what the world keeps, over
    Twilio's defaults for a number nobody configured."""
    sid = number.get("sid")
    return {
        "account_sid": account, "address_sid": None, "address_requirements": "none",
        "api_version": "2010-04-01", "beta": False, "capabilities": {
            "voice": True, "sms": True, "mms": True, "fax": False},
        "date_created": None, "date_updated": None, "friendly_name": number.get(
            "phone_number"), "identity_sid": None, "origin": "twilio", "sid": sid,
        "sms_application_sid": "", "sms_fallback_method": "POST", "sms_fallback_url": "",
        "sms_method": "POST", "sms_url": "", "status_callback": "",
        "status_callback_method": "POST", "trunk_sid": None,
        "uri": f"/2010-04-01/Accounts/{account}/IncomingPhoneNumbers/{sid}.json",
        "voice_receive_mode": "voice", "voice_application_sid": None,
        "voice_caller_id_lookup": False, "voice_fallback_method": "POST",
        "voice_fallback_url": None, "voice_method": "POST", "voice_url": None,
        "emergency_status": "Inactive", "emergency_address_sid": None,
        "emergency_address_status": "unregistered", "bundle_sid": None, "status": "in-use",
        "type": "local", **number, "subresource_uris": {"assigned_add_ons": (
            f"/2010-04-01/Accounts/{account}/IncomingPhoneNumbers/{sid}/AssignedAddOns.json")},
    }


def _not_found(ctx: SimContext) -> Response:
    return ctx.json(404, {"code": 20404, "message": f"The requested resource "
                          f"{ctx.request.path} was not found", "more_info":
                          "https://www.twilio.com/docs/errors/20404", "status": 404})


@handler
def fetch_number(ctx: SimContext) -> Response:
    account, sid = ctx.captures["account"], ctx.captures["sid"]
    number = _by_sid(ctx, account, sid) if SID.fullmatch(sid) else None
    if number is None:
        return _not_found(ctx)
    return ctx.json(200, resource(number, account))


@handler
def list_numbers(ctx: SimContext) -> Response:
    """The account's numbers, oldest first, filtered by ``PhoneNumber`` (a full E.164 number
    is a reference; a part matches the digits it holds) and ``FriendlyName``, paged with
    ``PageSize`` and ``Page``."""
    account, req = ctx.captures["account"], ctx.request
    wanted = re.sub(r"[\s\-().]", "", req.query_first("PhoneNumber") or "")
    name = req.query_first("FriendlyName")
    if E164.fullmatch(wanted):
        own_number(ctx, account, wanted)
    numbers = [n for n in ctx.world.list(NUMBERS)
               if n.get("account_sid", account) == account
               and wanted in str(n.get("phone_number", ""))
               and (name is None or n.get("friendly_name") == name)]
    size = max(1, min(1000, _int(req.query_first("PageSize"), 50)))
    page = max(0, _int(req.query_first("Page"), 0))
    chunk = numbers[page * size:(page + 1) * size]
    filters = "".join(f"&{urlencode({k: v})}" for k, v in (("PhoneNumber", wanted),
                                                           ("FriendlyName", name)) if v)

    def uri(n: int) -> str:
        return f"{req.path}?PageSize={size}&Page={n}{filters}"

    return ctx.json(200, {
        "incoming_phone_numbers": [resource(n, account) for n in chunk],
        "end": page * size + max(len(chunk) - 1, 0), "first_page_uri": uri(0),
        "next_page_uri": uri(page + 1) if (page + 1) * size < len(numbers) else None,
        "page": page, "page_size": size,
        "previous_page_uri": uri(page - 1) if page > 0 else None, "start": page * size,
        "uri": uri(page)})


def _int(value: str | None, default: int) -> int:
    try:
        return int(value) if value is not None else default
    except ValueError:
        return default
