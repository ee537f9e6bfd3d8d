"""Twilio Programmable Messaging: the pack (``pack.yaml``), its templates and its handlers
(:mod:`.handlers`; the account's phone numbers in :mod:`.numbers`, Messaging Services in
:mod:`.services`; the XML representation in :mod:`.twiml`)."""

from guard.providers.twilio import handlers, numbers, services
from guard.synth.handlers import handlers_in

HANDLERS = handlers_in("twilio", handlers, numbers, services)
