"""The synthesizer: turns a simulate decision into a response.

Templates run in a Jinja2 ``SandboxedEnvironment`` with ``StrictUndefined``.
Bodies are built as data and serialized once; request content only ever
enters templates as context values, never as template source.
"""
