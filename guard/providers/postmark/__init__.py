"""Postmark's email API: the pack (``pack.yaml``), its templates and its handlers
(:mod:`.handlers`)."""

from guard.providers.postmark import handlers
from guard.synth.handlers import handlers_in

HANDLERS = handlers_in("postmark", handlers)
