"""GitHub REST (api.github.com): the pack (``pack.yaml``), its templates and its handlers
(:mod:`.handlers`; the objects behind them in :mod:`.objects`)."""

from guard.providers.github import handlers
from guard.synth.handlers import handlers_in

HANDLERS = handlers_in("github", handlers)
