"""Amazon SES (v1 and v2, any region): the pack (``pack.yaml``) and its handlers
(:mod:`.handlers`)."""

from guard.providers.ses import handlers
from guard.synth.handlers import handlers_in

HANDLERS = handlers_in("ses", handlers)
