"""Slack's Web API and incoming webhooks: the pack (``pack.yaml``), its templates and its
handlers (:mod:`.handlers`, :mod:`.conversations`, :mod:`.history`, :mod:`.webhook`; the
simulated workspace in :mod:`.workspace`; argument reading in :mod:`.args`).

Webhook handlers keep the names rules have always used (``slack_webhook.*``).
"""

from guard.providers.slack import conversations, handlers, history, webhook
from guard.synth.handlers import handlers_in

HANDLERS = (handlers_in("slack", handlers, conversations, history)
            | handlers_in("slack_webhook", webhook))
