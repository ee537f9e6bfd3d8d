"""The built-in providers, one package each: ``guard/providers/<name>/`` holds the pack
(``pack.yaml``, with its test cases under ``tests:``), the templates it names
(``templates/``; ``template: github/issue.yaml`` is ``github/templates/issue.yaml``) and
the Python handlers its rules route to.

Packs and templates are found by looking at the directory (:mod:`guard.resources`);
handlers by importing each provider here. :data:`HANDLERS` is what a rule's
``respond: {handler: stripe.create_customer}`` resolves through (any pack may name a
built-in handler). Writing a handler: see :mod:`guard.synth.handlers`.
"""

from guard.providers import (
    apollo,
    brex,
    github,
    greenhouse,
    mailgun,
    plaid,
    postmark,
    resend,
    sendgrid,
    ses,
    slack,
    stripe,
    twilio,
)
from guard.synth.handlers import Registry

HANDLERS = Registry(p.HANDLERS for p in (apollo, brex, github, greenhouse, mailgun, plaid,
                                         postmark, resend, sendgrid, ses, slack, stripe, twilio))
