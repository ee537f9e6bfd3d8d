"""Greenhouse Harvest API (recruiting): simulated from its OpenAPI description
(spec/, rules/greenhouse.yaml); no handlers."""
