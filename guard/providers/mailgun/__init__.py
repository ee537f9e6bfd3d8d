"""Mailgun's Messages API: the pack (``pack.yaml``) and its handlers (:mod:`.handlers`)."""

from guard.providers.mailgun import handlers
from guard.synth.handlers import handlers_in

HANDLERS = handlers_in("mailgun", handlers)
