"""Apollo.io API (sales CRM): simulated from its OpenAPI description
(spec/, rules/apollo.yaml); no handlers."""
