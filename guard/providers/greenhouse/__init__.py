"""Greenhouse Harvest API (recruiting): simulated from its OpenAPI description
(spec/, pack.yaml); no handlers."""

from guard.synth.handlers import Handler

HANDLERS: dict[str, Handler] = {}  # every operation is answered from the description
