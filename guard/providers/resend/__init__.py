"""Resend's email API: the pack (``pack.yaml``), its templates and its handlers
(:mod:`.handlers`)."""

from guard.providers.resend import handlers
from guard.synth.handlers import handlers_in

HANDLERS = handlers_in("resend", handlers)
