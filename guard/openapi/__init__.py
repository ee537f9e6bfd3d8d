"""Spec-driven simulation: an OpenAPI description (spec.py) compiled into operations
(operations.py) that packs route to as rules (pack.py) and that are answered by validating
the request and acting on the sandbox's world (api.py, validate.py, state.py, generate.py).
See docs/openapi.md."""
