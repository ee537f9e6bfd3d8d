"""Twilio Messaging Services (``messaging.twilio.com/v1/Services``): an open-world
container, like the account's phone numbers.

An agent is configured with the sid of a Messaging Service set up in the console
(``MessagingServiceSid=MG...`` on a Message), so a well-formed sid the world does not hold
is one of the account's services on first reference (collection ``twilio_services``,
keyed by the sid: a friendly name, the account's sid, a creation date in the past, Twilio's
defaults), drawn from the sandbox's seeded streams and kept. In a strict world only the
services the world holds exist. A sid that is not ``MG`` + 32 hex is never looked up.

>>> SID.fullmatch("MG" + "0a" * 16) is not None, SID.fullmatch("MG123") is None
(True, True)
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from guard.request import Response
from guard.synth import openworld
from guard.synth.context import SimContext
from guard.synth.handlers import handler

SERVICES = "twilio_services"
ACCOUNTS = "twilio_services.account"
SID = re.compile(r"MG[0-9a-fA-F]{32}")
ACCOUNT = re.compile(r"AC[0-9a-fA-F]{32}")
BASE = "https://messaging.twilio.com/v1"
PURPOSES = ("Notifications", "Alerts", "Verification", "Reminders", "Support", "Marketing")
USECASES = {"Notifications": "notifications", "Alerts": "notifications",
            "Verification": "verification", "Reminders": "notifications",
            "Support": "discussion", "Marketing": "marketing"}
SETTINGS = {"InboundRequestUrl": "inbound_request_url", "InboundMethod": "inbound_method",
            "FallbackUrl": "fallback_url", "FallbackMethod": "fallback_method",
            "StatusCallback": "status_callback"}
FLAGS = {"StickySender": "sticky_sender", "MmsConverter": "mms_converter",
         "SmartEncoding": "smart_encoding", "FallbackToLongCode": "fallback_to_long_code",
         "AreaCodeGeomatch": "area_code_geomatch",
         "SynchronousValidation": "synchronous_validation",
         "UseInboundWebhookOnNumber": "use_inbound_webhook_on_number"}


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _links(sid: str) -> dict[str, str]:
    url = f"{BASE}/Services/{sid}"
    return {"phone_numbers": f"{url}/PhoneNumbers", "short_codes": f"{url}/ShortCodes",
            "alpha_senders": f"{url}/AlphaSenders", "messages": f"{url}/Messages",
            "us_app_to_person": f"{url}/Compliance/Usa2p",
            "us_app_to_person_usecases": f"{url}/Compliance/Usa2p/Usecases",
            "channel_senders": f"{url}/ChannelSenders",
            "destination_alpha_senders": f"{url}/DestinationAlphaSenders"}


def make(ctx: SimContext, sid: str, account: str, friendly_name: str, *,
         created: datetime, usecase: str = "undeclared") -> dict[str, Any]:
    """A Service resource with Twilio's defaults, as the SDK's ``ServiceInstance`` reads it."""
    return {
        "sid": sid, "account_sid": account, "friendly_name": friendly_name,
        "date_created": _iso(created), "date_updated": _iso(created),
        "inbound_request_url": None, "inbound_method": "POST", "fallback_url": None,
        "fallback_method": "POST", "status_callback": None, "sticky_sender": True,
        "mms_converter": True, "smart_encoding": True, "scan_message_content": "inherit",
        "fallback_to_long_code": True, "area_code_geomatch": True,
        "synchronous_validation": True, "validity_period": 14400,
        "url": f"{BASE}/Services/{sid}", "links": _links(sid), "usecase": usecase,
        "us_app_to_person_registered": False, "use_inbound_webhook_on_number": False,
    }


def referenced(ctx: SimContext, account: str, sid: str) -> dict[str, Any] | None:
    """The service ``sid`` (a well-formed sid: check :data:`SID` first), made on first
    reference in an open world as one of ``account``'s, set up a while ago."""

    def console() -> dict[str, Any]:
        purpose = ctx.world.rng.choice(PURPOSES)
        company = ctx.world.faker.company().split(",")[0]
        days = ctx.world.rng.randint(30, 700)
        return make(ctx, sid, account, f"{company} {purpose}",
                    created=ctx.world.clock.now() - timedelta(days=days),
                    usecase=USECASES[purpose])

    return openworld.referenced(ctx.world, ctx.options, SERVICES, sid, console)


def account_of(ctx: SimContext) -> str | None:
    """The account the Basic user names (``AC...``); None for API keys (``SK...``), whose
    account the request does not say."""
    user = ctx.request.credentials[0] if ctx.request.credentials else ""
    return user if ACCOUNT.fullmatch(user) else None


def _error(ctx: SimContext, status: int, code: int, message: str) -> Response:
    return ctx.json(status, {"code": code, "message": message, "more_info":
                             f"https://www.twilio.com/docs/errors/{code}", "status": status})


def _not_found(ctx: SimContext) -> Response:
    return _error(ctx, 404, 20404, f"The requested resource {ctx.request.path[3:]} was "
                  "not found")


@handler
def fetch_service(ctx: SimContext) -> Response:
    sid = ctx.captures["sid"]
    account = account_of(ctx)
    if not SID.fullmatch(sid):
        return _not_found(ctx)
    service = referenced(ctx, account or _default_account(ctx), sid)
    if service is None or account is not None and not owned_by(ctx, service, account):
        return _not_found(ctx)
    return ctx.json(200, service)


@handler
def create_service(ctx: SimContext) -> Response:
    form = dict(ctx.request.form_pairs)
    name = form.get("FriendlyName")
    if not name:
        return _error(ctx, 400, 20001, "Missing required parameter FriendlyName in the "
                      "post body")
    if len(name) > 64:
        return _error(ctx, 400, 21719, "The FriendlyName must be 64 characters or less")
    sid = ctx.ids.twilio("MG")
    service = make(ctx, sid, account_of(ctx) or _default_account(ctx), name,
                   created=ctx.world.clock.now(), usecase=form.get("Usecase") or "undeclared")
    for key, field in SETTINGS.items():
        if form.get(key):
            service[field] = form[key]
    for key, field in FLAGS.items():
        if key in form:
            service[field] = form[key].lower() == "true"
    if form.get("ValidityPeriod", "").isdigit():
        service["validity_period"] = int(form["ValidityPeriod"])
    ctx.world.put(SERVICES, service, sid)
    return ctx.json(201, service)


@handler
def list_services(ctx: SimContext) -> Response:
    """The account's services, oldest first, paged with ``PageSize`` and ``Page`` (the
    ``meta`` block the SDK follows)."""
    account, req = account_of(ctx), ctx.request
    services = [s for s in ctx.world.list(SERVICES)
                if account is None or s.get("account_sid", account) == account]
    size = max(1, min(1000, _int(req.query_first("PageSize"), 50)))
    page = max(0, _int(req.query_first("Page"), 0))
    chunk = services[page * size:(page + 1) * size]

    def url(n: int) -> str:
        return f"{BASE}/Services?PageSize={size}&Page={n}"

    more = (page + 1) * size < len(services)
    return ctx.json(200, {"services": chunk, "meta": {
        "page": page, "page_size": size, "first_page_url": url(0),
        "previous_page_url": url(page - 1) if page > 0 else None, "url": url(page),
        "next_page_url": url(page + 1) if more else None, "key": "services"}})


def _default_account(ctx: SimContext) -> str:
    """The sandbox's account for requests an API key authenticates (which do not say their
    account): made up once and kept, until an account sid uses a service made under it
    (:func:`owned_by`)."""
    kept = ctx.world.get(ACCOUNTS, "account")
    if kept is None:
        kept = ctx.world.put(ACCOUNTS, {"id": "account", "sid": ctx.ids.twilio("AC"),
                                        "confirmed": False})
    return str(kept["sid"])


def owned_by(ctx: SimContext, service: dict[str, Any], account: str) -> bool:
    """Whether ``service`` is ``account``'s. Services first referenced through an API key
    belong to the made-up account of :func:`_default_account`; the first account sid that
    uses one of them is the sandbox's account from then on, and takes them over."""
    owner = service.get("account_sid", account)
    if owner == account:
        return True
    kept = ctx.world.get(ACCOUNTS, "account")
    if kept is None or kept.get("confirmed") or owner != kept["sid"]:
        return False
    for other in ctx.world.list(SERVICES):
        if other.get("account_sid") == owner:
            ctx.world.put(SERVICES, {**other, "account_sid": account}, other["sid"])
    ctx.world.put(ACCOUNTS, {"id": "account", "sid": account, "confirmed": True})
    service["account_sid"] = account
    return True


def _int(value: str | None, default: int) -> int:
    try:
        return int(value) if value is not None else default
    except ValueError:
        return default
