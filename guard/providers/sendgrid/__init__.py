"""SendGrid's v3 Mail Send: the pack (``pack.yaml``), its templates and its handlers
(:mod:`.handlers`)."""

from guard.providers.sendgrid import handlers
from guard.synth.handlers import handlers_in

HANDLERS = handlers_in("sendgrid", handlers)
