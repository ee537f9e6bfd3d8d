"""``Idempotency-Key``: Stripe saves the first answer to a POST with a key and replays it.

The same key with other parameters (or on another endpoint) is a 400
``idempotency_error``. As in Stripe, only answers of calls that ran are saved (2xx and
card declines), not validation errors, and keys are forgotten after 24 hours. Keys live
in the sandbox's world (collection ``stripe.idempotency_keys``), so ``--state`` keeps
them across a restart.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING

from guard.providers.stripe.errors import idempotency_conflict, idempotency_endpoint
from guard.providers.stripe.kinds import IDEMPOTENCY
from guard.request import Response

if TYPE_CHECKING:
    from guard.providers.stripe.call import Call

KEEP_SECONDS = 24 * 3600


def fingerprint(call: Call) -> str:
    pairs = sorted(call.request.form_pairs) if call.request.form_pairs else []
    raw = json.dumps([call.request.method, call.request.path, pairs or call.request.text])
    return hashlib.sha256(raw.encode()).hexdigest()


def replay(call: Call) -> Response | None:
    """The saved answer for this call's key, or None. Raises on a conflicting reuse."""
    key = call.idempotency_key
    if not key or call.request.method != "POST":
        return None
    saved = call.world.get(IDEMPOTENCY, key)
    if saved is None or saved["created"] + KEEP_SECONDS < call.now:
        return None
    if saved["path"] != call.request.path:
        raise idempotency_endpoint(key, saved["path"], call.request.path)
    if saved["fingerprint"] != fingerprint(call):
        raise idempotency_conflict(key)
    return Response(saved["status"], [("Content-Type", "application/json"),
                                      ("Request-Id", call.request_id),
                                      ("Stripe-Version", call.api_version),
                                      ("Idempotency-Key", key),
                                      ("Idempotent-Replayed", "true"),
                                      ("Original-Request", saved["request_id"])],
                    saved["body"].encode())


def remember(call: Call, response: Response) -> None:
    key = call.idempotency_key
    if not key or call.request.method != "POST" or response.header("Idempotent-Replayed"):
        return
    if not (200 <= response.status < 300 or response.status == 402):
        return
    if call.world.next(IDEMPOTENCY) % 100 == 0:  # prune now and then, not on every call
        for old in call.world.list(IDEMPOTENCY):
            if old["created"] + KEEP_SECONDS < call.now:
                call.world.delete(IDEMPOTENCY, old["id"])
    call.world.put(IDEMPOTENCY, {
        "id": key, "created": call.now, "path": call.request.path,
        "fingerprint": fingerprint(call), "status": response.status,
        "body": response.body.decode(), "request_id": call.request_id,
    })
