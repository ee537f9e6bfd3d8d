"""The Plaid API (banking), version 2020-09-14_1.482.3: simulated from its OpenAPI description
(spec/, pack.yaml); no handlers."""

from guard.synth.handlers import Handler

HANDLERS: dict[str, Handler] = {}  # every operation is answered from the description
