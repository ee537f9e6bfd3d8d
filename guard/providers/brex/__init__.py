"""Brex Payments API: simulated from its OpenAPI description
(spec/, rules/brex.yaml); no handlers."""
