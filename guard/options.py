"""guard's run options, declared once.

:class:`Options` is the one typed model of everything ``guard run`` (and ``guard jail``,
which shares it) can be told. Each field is declared here and nowhere else, with its type,
default and help; from it come

- the command-line flags (:func:`add_flags`: ``listen_port`` is ``--listen-port``, a bool
  that defaults to true is ``--no-guard-headers``, a list is a repeatable flag);
- the environment variables (``GUARD_LISTEN_PORT``, ``GUARD_RULES=a.yaml,b.yaml``);
- the keys of the YAML config file (``listen_port: 8081`` or ``listen-port: 8081``).

Values written as text (a flag, a variable, a YAML string) go through the same parser in
every source, so ``64KiB`` means the same in all three. Precedence, highest first, is
:data:`PRECEDENCE`: command line > environment > config file > defaults. The config file
is ``--config FILE``, else ``$GUARD_CONFIG``, else the first of :data:`CONFIG_FILES` that
exists.

To add an option, add one field to :class:`Options` (a type, a default, a ``description``,
and an ``Opt(...)`` in ``Annotated`` when it needs a metavar, a short flag or a parser),
then read ``opts.<name>`` where it is used.

>>> Options(listen_port=0).listen_port, Options().sandbox_from
(0, <SandboxFrom.CLIENT: 'client'>)
>>> parse_size("64KiB"), parse_host_port(":53")
(65536, ('0.0.0.0', 53))
"""

from __future__ import annotations

import argparse
import difflib
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, get_args, get_origin

import yaml
from pydantic import (
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from guard.audit.event import DEFAULT_BODY_LIMIT
from guard.audit.writer import DEFAULT_CHECKPOINT_EVERY
from guard.errors import OptionsError
from guard.head_limits import DEFAULT_MAX_HEADER_BYTES, DEFAULT_MAX_URL_BYTES
from guard.limits import (
    DEFAULT_HEADER_TIMEOUT,
    DEFAULT_IDLE_TIMEOUT,
    DEFAULT_MAX_BODY,
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_DECODED,
    DEFAULT_MAX_RATIO,
    DEFAULT_MAX_WORLD_BYTES,
    DEFAULT_MAX_WORLD_OBJECTS,
    DEFAULT_WORLD_IDLE_EVICT,
)

ENV_PREFIX = "GUARD_"
CONFIG_ENV = "GUARD_CONFIG"
DEFAULT_CONFDIR = Path("~/.guard")
# Not ./guard.yaml: guard may be started in a directory an agent can write to, and a
# config file there could turn off everything guard is for.
CONFIG_FILES = (DEFAULT_CONFDIR / "guard.yaml",)
PRECEDENCE = ("command line", "environment", "config file", "defaults")


class SandboxFrom(StrEnum):
    """What names the sandbox a request comes from."""

    CLIENT = "client"  # the client's address
    HEADER = "header"  # the X-Guard-Sandbox header
    PROXY_USER = "proxy-user"  # the proxy username (HTTP) or the AUTH user (SMTP)


# parsers: text -> value, shared by flags, environment and config file (raise ValueError)

_UNITS = {"": 1, "b": 1, "k": 1024, "kb": 1000, "kib": 1024, "m": 1024**2, "mb": 1000**2,
          "mib": 1024**2, "g": 1024**3, "gb": 1000**3, "gib": 1024**3}


def parse_size(text: str) -> int:
    """A byte size: ``65536``, ``64KiB``, ``100MB``, ``1g``."""
    m = re.fullmatch(r"\s*(\d+)\s*([a-zA-Z]*)\s*", text)
    if not m or m.group(2).lower() not in _UNITS:
        raise ValueError(f"not a size: {text!r} (try 65536, 64KiB or 100MB)")
    return int(m.group(1)) * _UNITS[m.group(2).lower()]


_SECONDS = {"": 1, "s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> float:
    """A number of seconds: ``30``, ``2.5s``, ``5m``, ``1h``."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", text)
    if not m or m.group(2).lower() not in _SECONDS:
        raise ValueError(f"not a duration: {text!r} (try 30, 30s, 5m or 1h)")
    return float(m.group(1)) * _SECONDS[m.group(2).lower()]


OFF = ("off", "none", "no", "false")


def parse_durations(text: str) -> tuple[float, ...]:
    """Comma-separated durations (``5m,30m,2h``), or ``off`` for none."""
    if text.strip().lower() in OFF:
        return ()
    return tuple(parse_duration(part) for part in text.split(","))


def parse_path_or_off(text: str) -> Path | None:
    """A path, or ``off`` (also ``none``, ``no``, ``false``) for none at all."""
    return None if text.strip().lower() in OFF else Path(text)


def default_audit(confdir: Path) -> Path:
    """Where the audit log is unless ``--audit`` says otherwise."""
    return confdir / "audit" / "audit.jsonl"


def default_state(confdir: Path) -> Path:
    """Where sandbox worlds are journaled unless ``--state`` says otherwise."""
    return confdir / "state"


class LogFormat(StrEnum):
    """How ``guard run`` prints one line per request."""

    TEXT = "text"
    JSON = "json"


def parse_host_port(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (or ``:PORT`` for every address) as a tuple."""
    host, sep, port = text.rpartition(":")
    if not sep or not (port.isascii() and port.isdigit()):
        raise ValueError(f"expected HOST:PORT, got {text!r}")
    return host.strip("[]") or "0.0.0.0", int(port)


@dataclass(frozen=True)
class Opt:
    """How a field is written on the command line, beyond what its type says."""

    metavar: str | None = None
    short: str | None = None  # e.g. "-r"
    parse: Callable[[str], Any] | None = None  # text -> value, in every source
    flag: bool = True  # False: environment and config file only


class Options(BaseSettings):
    """Everything a running guard is told. Constructing it directly (``Options(seed=3)``)
    uses only the given values and the defaults; :func:`load` adds the environment and the
    config file, with :data:`PRECEDENCE`."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, enable_decoding=False,
                                      env_ignore_empty=True, extra="forbid", frozen=True)

    # rules
    rules: Annotated[list[str], Opt(metavar="PATH", short="-r")] = Field(
        default_factory=list,
        description="a rule file or directory (repeatable); added to the built-in packs")
    builtin: bool = Field(True, description="load the built-in rule packs")
    reload: bool = Field(True, description="watch rule files and templates for changes "
                         "(SIGHUP reloads either way)")
    reload_interval: Annotated[float, Opt(metavar="SECONDS")] = Field(
        1.0, gt=0, description="seconds between checks of the watched files")

    # listening
    listen_host: Annotated[str, Opt(metavar="HOST")] = Field(
        "127.0.0.1", description="the address guard listens on")
    listen_port: Annotated[int, Opt(metavar="PORT")] = Field(
        8080, ge=0, le=65535, description="the proxy port (0: any free)")
    mode: Annotated[list[str], Opt(metavar="MODE")] = Field(
        default_factory=lambda: ["regular"], min_length=1,
        description="mitmproxy mode spec: regular, transparent, reverse:https://host, ... "
        "(repeatable)")
    confdir: Annotated[Path, Opt(metavar="DIR")] = Field(
        DEFAULT_CONFDIR, description="where the CA lives")
    upstream_ca: Annotated[Path | None, Opt(metavar="PEM")] = Field(
        None, description="verify allowed upstream servers against the CA certificates in PEM "
        "instead of the certifi bundle (an internal PKI, a test lab)")

    # audit
    audit: Annotated[Path | None, Opt(metavar="PATH", parse=parse_path_or_off)] = Field(
        None, description="append audit events (JSON lines) to PATH, or 'off' for no audit "
        "log (default: CONFDIR/audit/audit.jsonl)")
    audit_body_limit: Annotated[int, Opt(metavar="SIZE", parse=parse_size)] = Field(
        DEFAULT_BODY_LIMIT, ge=0, description="keep at most SIZE bytes of each body in the "
        "audit log (larger bodies are truncated, their SHA-256 kept)")
    audit_key: Annotated[Path | None, Opt(metavar="FILE")] = Field(
        None, description="sign periodic checkpoints with this key (HMAC secret or Ed25519 "
        "private key PEM; see 'guard audit keygen'), so truncation is detectable")
    audit_max_bytes: Annotated[int | None, Opt(metavar="SIZE", parse=parse_size)] = Field(
        None, gt=0, description="rotate the audit log at SIZE (e.g. 100MiB): PATH becomes "
        "PATH.1, PATH.2, ... and the chain continues")
    audit_budget: Annotated[int | None, Opt(metavar="SIZE", parse=parse_size)] = Field(
        None, gt=0, description="keep PATH and its rotated files under SIZE in total: the "
        "oldest files are deleted, and the deletion recorded, so the rest still verifies "
        "(rotates at a tenth of SIZE unless --audit-max-bytes says)")
    audit_checkpoint_every: Annotated[int, Opt(metavar="N")] = Field(
        DEFAULT_CHECKPOINT_EVERY, gt=0,
        description="with --audit-key, a signed checkpoint every N events")

    # request size (harden)
    max_header_bytes: Annotated[int, Opt(metavar="SIZE", parse=parse_size)] = Field(
        DEFAULT_MAX_HEADER_BYTES, gt=0, description="refuse a request whose headers take "
        "more than SIZE bytes with 431 (rule guard.header-too-large)")
    max_url_bytes: Annotated[int, Opt(metavar="SIZE", parse=parse_size)] = Field(
        DEFAULT_MAX_URL_BYTES, gt=0, description="refuse a request whose URL is longer than "
        "SIZE bytes with 414 (rule guard.url-too-long)")

    # sandboxes and their worlds
    sandbox_from: SandboxFrom = Field(
        SandboxFrom.CLIENT, description="what names the sandbox: the client address, the "
        "X-Guard-Sandbox header, or the proxy username")
    sandbox_key: Annotated[Path | None, Opt(metavar="FILE")] = Field(
        None, description="with --sandbox-from header or proxy-user: tokens derived from this "
        "key (at least 16 bytes; 'guard sandbox token ID --key FILE') prove a sandbox, so "
        "sandboxes need not be created through the admin API first")
    policy_rules: Annotated[list[str], Opt(metavar="PATH")] = Field(
        default_factory=list, description="rule packs that are not active by default but that "
        "a sandbox's policy may add by name (a file or directory, repeatable)")
    seed: Annotated[int | None, Opt(metavar="N")] = Field(
        None, description="make ids, Faker data and times reproducible (virtual clock)")
    state: Annotated[Path | None, Opt(metavar="DIR", parse=parse_path_or_off)] = Field(
        None, description="journal sandbox worlds under DIR, so they outlive a restart and "
        "'guard outbox' and 'guard state' can read them, or 'off' to keep them in memory "
        "only (default: CONFDIR/state with the in-process store; off with --store redis)")
    store: Annotated[str | None, Opt(metavar="URL")] = Field(
        None, description="where sandbox worlds live: in this process (default) or "
        "redis://HOST:PORT/DB, shared by every worker and replica")
    world: Annotated[str | None, Opt(metavar="FILE")] = Field(
        None, description="fork this world snapshot (a 'guard state export' file, or the name "
        "of a seed in fixtures/seeds) into every new sandbox")
    strict_world: bool = Field(False, description="no open world: Slack channels, GitHub "
                               "repositories, Twilio numbers, SendGrid senders, Mailgun domains "
                               "and Stripe prices exist only when the world holds them")
    webhook_allow: Annotated[list[str], Opt(metavar="HOST")] = Field(
        default_factory=list, description="also deliver Stripe webhooks to HOST (exact, or "
        "*.domain); by default only loopback URLs are delivered (repeatable)")
    webhook_retries: Annotated[tuple[float, ...], Opt(metavar="DELAYS",
                                                       parse=parse_durations)] = Field(
        (300.0, 1800.0, 7200.0), description="after a failed Stripe webhook delivery, try "
        "again after each of these delays in turn, e.g. 5m,30m,2h (the default: three "
        "retries over a few hours, as Stripe's test mode does), or 'off'")
    guard_headers: bool = Field(True, description="add X-Guard-Rule / X-Guard-Action to "
                                "responses")
    fast_path: bool = Field(True, description="serve HTTPS tunnels to hosts no rule allows "
                            "(simulated and blocked hosts) outside mitmproxy's layers: the same "
                            "decisions and audit, less CPU (regular mode); --no-fast-path "
                            "sends every connection through mitmproxy's layers")

    # limits (limits): what one sandbox may make guard hold (guard/limits.py)
    max_body_size: Annotated[int, Opt(metavar="SIZE", parse=parse_size)] = Field(
        DEFAULT_MAX_BODY, gt=0, description="refuse a request body larger than SIZE with 413 "
        "(guard.limit.body-size) before reading it; responses are not limited")
    max_decoded_size: Annotated[int, Opt(metavar="SIZE", parse=parse_size)] = Field(
        DEFAULT_MAX_DECODED, gt=0, description="refuse a request body whose Content-Encoding "
        "(gzip, deflate, br, zstd) unpacks to more than SIZE (guard.limit.decoded-size)")
    max_decode_ratio: Annotated[int, Opt(metavar="N")] = Field(
        DEFAULT_MAX_RATIO, gt=0, description="refuse a request body that unpacks to more "
        "than N times its size, once past 1 MiB (guard.limit.decode-ratio)")
    idle_timeout: Annotated[float, Opt(metavar="SECONDS", parse=parse_duration)] = Field(
        DEFAULT_IDLE_TIMEOUT, gt=0, description="close a connection after SECONDS with no "
        "byte either way (tunnels, WebSockets and streams included)")
    header_timeout: Annotated[float, Opt(metavar="SECONDS", parse=parse_duration)] = Field(
        DEFAULT_HEADER_TIMEOUT, gt=0, description="close a connection that has not sent a "
        "whole request head SECONDS after it opened or after its last answer "
        "(guard.limit.header-timeout): half-sent requests do not pile up")
    max_world_objects: Annotated[int, Opt(metavar="N")] = Field(
        DEFAULT_MAX_WORLD_OBJECTS, gt=0, description="a sandbox's world holds at most N "
        "simulated objects (a provider's events count): a request that would add more gets "
        "the provider's error (guard.limit.world)")
    max_world_bytes: Annotated[int, Opt(metavar="SIZE", parse=parse_size)] = Field(
        DEFAULT_MAX_WORLD_BYTES, gt=0, description="a sandbox's world holds at most SIZE of "
        "objects (as JSON): a request that would grow it past that gets the provider's "
        "error (guard.limit.world)")
    world_idle_evict: Annotated[float, Opt(metavar="SECONDS", parse=parse_duration)] = Field(
        DEFAULT_WORLD_IDLE_EVICT, ge=0, description="drop from memory the world of a sandbox "
        "idle for SECONDS (0: never); with --state it is read back from its journal on its "
        "next request, without it is gone (in-process store only)")
    max_client_connections: Annotated[int, Opt(metavar="N")] = Field(
        DEFAULT_MAX_CONNECTIONS, gt=0, description="refuse more than N open connections "
        "from one client address (guard.limit.connections)")

    # other listeners
    dns_listen: Annotated[tuple[str, int] | None,
                          Opt(metavar="HOST:PORT", parse=parse_host_port)] = Field(
        None, description="also answer DNS queries (UDP) on HOST:PORT, every name with one "
        "address (--dns-answer): for sandboxes whose only way out is guard")
    dns_answer: Annotated[str | None, Opt(metavar="IPV4")] = Field(
        None, description="the address the DNS stub gives for every name (default: the "
        "--dns-listen host); must reach guard's transparent listener")
    smtp_port: Annotated[int | None, Opt(metavar="PORT")] = Field(
        None, ge=0, le=65535, description="also run the SMTP sink (ESMTP, STARTTLS, AUTH) on "
        "the listen host: every message goes to the outbox, none is relayed")
    smtps_port: Annotated[int | None, Opt(metavar="PORT")] = Field(
        None, ge=0, le=65535, description="the SMTP sink with implicit TLS, for clients of "
        "port 465")
    admin_listen: Annotated[tuple[str, int] | None,
                            Opt(metavar="HOST:PORT", parse=parse_host_port)] = Field(
        None, description="serve the admin API (create, fork, snapshot, diff and delete "
        "sandboxes) on HOST:PORT; a non-loopback address needs --admin-token-file")
    admin_token_file: Annotated[Path | None, Opt(metavar="FILE")] = Field(
        None, description="the admin API's bearer token (the first line of FILE, at least 16 "
        "characters); without it guard writes a new one to CONFDIR/admin-token")

    quiet: Annotated[bool, Opt(short="-q")] = Field(
        False, description="no line per request and a one-line banner; log warnings only")
    log_format: LogFormat = Field(
        LogFormat.TEXT, description="the line printed per request: text (coloured on a "
        "terminal unless NO_COLOR is set) or json (one JSON object per line)")

    @classmethod
    def settings_customise_sources(
        cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource, dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Direct construction is pure (tests and embedding must not pick up the caller's
        # environment); load() layers the environment and the config file explicitly.
        return (init_settings,)

    @field_validator("*", mode="before")
    @classmethod
    def _from_text(cls, value: Any, info: ValidationInfo) -> Any:
        """Text from any source goes through the field's parser; lists split on commas."""
        field = cls.model_fields[str(info.field_name)]
        opt = opt_of(field)
        if isinstance(value, str):
            if _is_list(field.annotation):
                return [part.strip() for part in value.split(",") if part.strip()]
            if opt.parse is not None:
                return opt.parse(value)
        return value

    @model_validator(mode="before")
    @classmethod
    def _defaults_under_confdir(cls, data: Any) -> Any:
        """The audit log and the state journal live in the confdir unless told otherwise;
        given as None (``off``, or ``audit: null`` in the file) there is none."""
        if not isinstance(data, dict):
            return data
        confdir = Path(str(data.get("confdir") or DEFAULT_CONFDIR))
        extra: dict[str, Any] = {}
        if "audit" not in data:
            extra["audit"] = default_audit(confdir)
        store = data.get("store")
        if "state" not in data and store in (None, "", "memory", "memory:"):
            extra["state"] = default_state(confdir)
        for name in ("audit", "state"):
            if data.get(name) is False:  # YAML reads `audit: off` as false
                extra[name] = None
        return {**data, **extra} if extra else data

    @model_validator(mode="after")
    def _needs(self) -> Options:
        if self.audit_key is not None and self.audit is None:
            raise ValueError("--audit-key signs the audit log, and there is none (--audit "
                             "off): give --audit PATH or drop --audit-key")
        return self

    @field_validator("confdir", "audit", "audit_key", "state", "upstream_ca", "sandbox_key",
                     "admin_token_file")
    @classmethod
    def _expand(cls, value: Path | None) -> Path | None:
        return value.expanduser() if value is not None else None

    @property
    def ca(self) -> Path:
        """guard's CA certificate (created in ``confdir`` when guard starts)."""
        return self.confdir / "mitmproxy-ca-cert.pem"


def opt_of(field: FieldInfo) -> Opt:
    return next((m for m in field.metadata if isinstance(m, Opt)), Opt())


def env_name(name: str) -> str:
    """The environment variable of a field.

    >>> env_name("listen_port")
    'GUARD_LISTEN_PORT'
    """
    return ENV_PREFIX + name.upper()


def flag_name(name: str) -> str:
    return "--" + name.replace("_", "-")


def _is_list(annotation: Any) -> bool:
    return get_origin(annotation) is list


def _bare(annotation: Any) -> Any:
    """``int | None`` -> ``int``."""
    args = [a for a in get_args(annotation) if a is not type(None)]
    return args[0] if get_origin(annotation) is not list and len(args) == 1 else annotation


# the command line


def add_flags(parser: argparse.ArgumentParser, model: type[Options] = Options, *,
              only: Iterable[str] | None = None, exclude: Iterable[str] = (),
              hidden: Iterable[str] = (), config: bool = True, sources: bool = True) -> None:
    """Add a flag for every field of ``model`` (or those in ``only``, less ``exclude``).

    Flags not given stay out of the namespace (``argparse.SUPPRESS``), so a lower source
    (environment, config file) still counts for them; :func:`from_args` reads them back.
    ``sources`` names each flag's environment variable in its help; ``hidden`` flags are
    accepted but not listed (so a command can refuse them with its own message).
    """
    wanted = set(only) if only is not None else set(model.model_fields)
    skipped = set(exclude)
    unlisted = set(hidden)
    for name, field in model.model_fields.items():
        opt = opt_of(field)
        if name not in wanted or name in skipped or not opt.flag:
            continue
        names = [n for n in (opt.short, flag_name(name)) if n]
        kwargs: dict[str, Any] = {"dest": name, "default": argparse.SUPPRESS,
                                  "help": argparse.SUPPRESS if name in unlisted
                                  else _help(name, field, sources)}
        kind = _bare(field.annotation)
        if kind is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        else:
            kwargs["metavar"] = opt.metavar or name.upper()
            kwargs["type"] = _argtype(opt.parse or (str if _is_list(kind) else kind))
            if _is_list(kind):
                kwargs["action"] = "append"
            if isinstance(kind, type) and issubclass(kind, StrEnum):
                kwargs["choices"] = [m.value for m in kind]
                kwargs["type"] = str
                del kwargs["metavar"]
        parser.add_argument(*names, **kwargs)
    if config:
        parser.add_argument(
            "--config", type=Path, default=None, metavar="FILE",
            help=f"read options from this YAML file (default: ${CONFIG_ENV}, else "
            f"{', else '.join(map(str, CONFIG_FILES))} if it exists); "
            "command line > environment > config file > defaults")


def _help(name: str, field: FieldInfo, sources: bool) -> str:
    text = field.description or ""
    default = field.get_default(call_default_factory=True)
    if default is True:
        text += " (default: on)"
    elif default not in (None, False, [], ()):
        shown = ",".join(map(str, default)) if isinstance(default, list) else str(default)
        text += f" (default: {shown})"
    if sources:
        text += f" [env {env_name(name)}]"
    return text.replace("%", "%%")


def _argtype(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    def convert(text: str) -> Any:
        try:
            return parse(text)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None

    convert.__name__ = getattr(parse, "__name__", "value")
    return convert


def from_args(args: argparse.Namespace, model: type[Options] = Options) -> Options:
    """The options the command line (``args``), the environment and the config file say."""
    flags = {k: v for k, v in vars(args).items() if k in model.model_fields}
    return load(flags, config=getattr(args, "config", None), model=model)


# the layers


def load(flags: Mapping[str, Any] | None = None, *, config: Path | None = None,
         model: type[Options] = Options) -> Options:
    """Combine the sources with :data:`PRECEDENCE`. Raises :class:`OptionsError` naming the
    source of every bad value (``guard.yaml:3:14: listen_port: ...``, ``GUARD_SEED=x: ...``).

    >>> load({"seed": 3, "rules": ["a.yaml"]}).rules
    ['a.yaml']
    """
    path = config_path(config)
    layers: list[tuple[str, dict[str, Any]]] = []  # lowest first
    problems: list[str] = []
    if path is not None:
        values, where = read_config(path, model)
        layers.append((str(path), values))
        problems += _check(model, values, lambda k: where.get(k, str(path)))
    env_values = {k: v for k, v in EnvSettingsSource(model)().items() if v is not None}
    layers.append(("environment", env_values))
    problems += _check(model, env_values, lambda k: f"{env_name(k)}={env_values[k]!s}")
    layers.append(("command line", dict(flags or {})))
    problems += _check(model, layers[-1][1], lambda k: flag_name(k))
    if problems:
        raise OptionsError(problems)
    merged: dict[str, Any] = {}
    for _, values in layers:
        merged.update(values)
    try:
        return model.model_validate(merged)
    except ValidationError as e:  # values that are fine alone but not together
        raise OptionsError([_message(err) for err in e.errors()]) from None


def _message(err: Any) -> str:
    name = ".".join(str(p) for p in err["loc"])
    text = str(err["msg"]).removeprefix("Value error, ")
    return f"{name}: {text}" if name else text


def config_path(given: Path | None) -> Path | None:
    """The config file to read: given, named by ``$GUARD_CONFIG``, or found; None if none.
    A file that is named but missing is an error; a default one that is missing is not."""
    named = given or (Path(os.environ[CONFIG_ENV]) if os.environ.get(CONFIG_ENV) else None)
    if named is not None:
        named = named.expanduser()
        if not named.is_file():
            raise OptionsError([f"{named}: no such config file"])
        return named
    return next((p.expanduser() for p in CONFIG_FILES if p.expanduser().is_file()), None)


def read_config(path: Path, model: type[Options] = Options
                ) -> tuple[dict[str, Any], dict[str, str]]:
    """The values of a YAML config file and where each is (``file:line:column``)."""
    try:
        text = path.read_text(encoding="utf-8")
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except (OSError, UnicodeError) as e:
        raise OptionsError([f"{path}: cannot read: {e}"]) from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        raise OptionsError([f"{at}: not valid YAML: {getattr(e, 'problem', e)}"]) from None
    if data is None:
        return {}, {}
    if not isinstance(data, dict) or not isinstance(node, yaml.MappingNode):
        raise OptionsError([f"{path}:1:1: a config file is a mapping of option: value"])
    values: dict[str, Any] = {}
    where: dict[str, str] = {}
    problems: list[str] = []
    for key_node, _ in node.value:
        key = str(key_node.value)
        name = key.replace("-", "_")
        at = f"{path}:{key_node.start_mark.line + 1}:{key_node.start_mark.column + 1}"
        if name not in model.model_fields:
            close = difflib.get_close_matches(name, list(model.model_fields), 1)
            problems.append(f"{at}: unknown option {key!r}"
                            + (f" (did you mean {close[0]!r}?)" if close else ""))
            continue
        values[name] = data[key]
        where[name] = at
    if problems:
        raise OptionsError(problems)
    return values, where


def _check(model: type[Options], values: Mapping[str, Any],
           where: Callable[[str], str]) -> list[str]:
    """Validate one source on its own, so that a problem names the source it is in."""
    if not values:
        return []
    try:
        model.model_validate(dict(values))
    except ValidationError as e:
        out = []
        for err in e.errors():
            name = str(err["loc"][0]) if err["loc"] else ""
            if name in values:
                out.append(f"{where(name)}: {_message(err)}")
            elif not name:  # about several options at once: said once, by load()
                continue
            else:
                out.append(_message(err))
        return out
    return []


def describe(model: type[Options] = Options) -> Sequence[tuple[str, str, str]]:
    """(flag, environment variable, config key) of every option, for the docs."""
    return [(flag_name(n) if opt_of(f).flag else "", env_name(n), n)
            for n, f in model.model_fields.items()]
