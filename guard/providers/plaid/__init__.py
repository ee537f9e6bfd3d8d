"""The Plaid API (banking), version 2020-09-14_1.482.3: simulated from its OpenAPI description
(spec/, rules/plaid.yaml); no handlers."""
