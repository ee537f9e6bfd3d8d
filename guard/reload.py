"""Hot reload: a running guard picks up changed rule files and templates.

A poll task (no extra dependency) compares each watched file's (mtime, size)
every ``interval`` seconds; SIGHUP asks for a reload at once. A reload builds a
complete new :class:`~guard.packs.Packs` (the engine and the responses together) off
the event loop, then swaps ``ctx.packs`` (the pipeline's
:class:`~guard.pipeline.Context`) in one assignment: a request already in flight keeps
the packs it read, the next one gets the new rules and responses, and no request ever
sees half a rule set or decides with one set and answers with another. A reload that
fails validation changes nothing: the last good rules keep answering, and the problems
are logged
(every ``path:line:column``) and audited (rule ``guard.reload``, action
``reload-failed``). A good reload is audited as action ``reload``.

Watched: the rule files (of a directory: the rule files in it now, so a new or
removed file counts), the built-in packs, every file under the templates
directory, and every template path the last load looked at, found or not (so
creating a template a rule was missing is noticed). Nothing else: an audit log
or an editor's swap file next to the rules does not cause reloads.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from guard import heap
from guard.audit.event import system_event
from guard.errors import AuditError, Problem, RuleError
from guard.packs import Packs, load_packs
from guard.resources import builtin_packs, builtin_templates
from guard.rules.loader import rule_files

if TYPE_CHECKING:
    from guard.audit.writer import AuditWriter
    from guard.pipeline import Context

log = logging.getLogger("guard")

RELOAD_RULE_ID = "guard.reload"
SETTLE_ROUNDS = 10  # polls to wait for a file that keeps changing (an editor mid-save)

Stamp = dict[str, tuple[int, int] | None]


class Reloader:
    """Reloads ``ctx.packs`` from ``paths`` (plus the built-in packs when ``builtin``),
    auditing every reload in ``audit``."""

    def __init__(self, ctx: Context, audit: AuditWriter, paths: Sequence[str | Path], *,
                 builtin: bool = True,
                 interval: float = 1.0) -> None:
        self.ctx = ctx
        self.audit = audit
        self.paths = [Path(p) for p in paths]
        self.builtin = builtin
        self.interval = interval
        self.reloads = 0  # successful reloads
        self.failures = 0  # refused reloads
        self.problems: list[Problem] = []  # of the last refused reload
        self._templates: set[str] = set(ctx.packs.templates)
        self._lock: asyncio.Lock | None = None
        self._task: asyncio.Task[None] | None = None
        self._stamp: Stamp = self.stamp()

    # what is watched

    def watched(self) -> list[Path]:
        """The files and directories whose (mtime, size) decide whether to reload."""
        out = (builtin_packs() if self.builtin else []) + rule_files(self.paths)
        for folder in builtin_templates().values():
            out.extend(sorted(_walk(folder)))
        out.extend(Path(t) for t in sorted(self._templates))
        return list(dict.fromkeys(out))

    def stamp(self) -> Stamp:
        return {str(p): _stat(p) for p in self.watched()}

    # running

    @property
    def watching(self) -> bool:
        """Whether the poll task runs (``--no-reload`` turns it off; SIGHUP works either way)."""
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        """Start polling (call inside the running event loop)."""
        if self._task is None and self.interval > 0:
            self._task = asyncio.get_running_loop().create_task(self._poll(), name="guard-reload")

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None

    def trigger(self, why: str) -> None:
        """Ask for a reload from a signal handler or another thread's event loop call."""
        asyncio.get_running_loop().create_task(self.reload(why))

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                current = await asyncio.to_thread(self.stamp)
                if current == self._stamp:
                    continue
                for _ in range(SETTLE_ROUNDS):  # wait until the files stop changing
                    await asyncio.sleep(self.interval)
                    settled = await asyncio.to_thread(self.stamp)
                    if settled == current:
                        break
                    current = settled
                await self.reload(f"changed: {', '.join(_changed(self._stamp, current))}")
            except asyncio.CancelledError:
                raise
            except Exception:  # the watcher must outlive any surprise; the rules stay as they are
                log.exception("guard: rule watcher failed; rules unchanged")

    async def reload(self, why: str) -> bool:
        """Load everything anew and swap it in; on any problem keep the current rules."""
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            stamp = await asyncio.to_thread(self.stamp)
            old = self.ctx.packs
            try:
                packs = await asyncio.to_thread(self._build)
            except RuleError as e:
                problems = e.problems
            except Exception as e:  # an unexpected crash in loading: refuse, like bad rules
                log.exception("guard: reload crashed")
                problems = [Problem("<reload>", 1, 1, f"{type(e).__name__}: {e}")]
            else:
                self.ctx.packs = packs  # the one switch: whole old set, or whole new set
                heap.thawed()  # the old packs' cycles go with the next full collection
                self._settle(stamp)
                self.reloads += 1
                self.problems = []
                summary = f"{len(packs.ruleset.rules)} rules in {len(packs.ruleset.files)} files"
                log.info("guard: rules reloaded (%s): %s", why, summary)
                self._audit("reload", f"rules reloaded ({why}): {summary}",
                            rules=len(packs.ruleset.rules), files=packs.ruleset.files)
                return True
            self._settle(stamp)  # do not retry the same broken files every poll
            self.failures += 1
            self.problems = list(problems)
            kept = f"{len(old.ruleset.rules)} rules"
            log.error("guard: RELOAD FAILED (%s): keeping the last good rules (%s); "
                      "%d problem(s):\n%s", why, kept, len(problems),
                      "\n".join(f"  {p}" for p in problems))
            self._audit("reload-failed", f"reload refused ({why}), keeping the last good rules "
                        f"({kept}): {len(problems)} problem(s)",
                        problems=[str(p) for p in problems])
            return False

    def _settle(self, before: Stamp) -> None:
        """Files as they were when loading began (a later edit is seen by the next poll), plus
        the template paths this load looked at."""
        self._stamp = {k: before.get(k, v) for k, v in self.stamp().items()}

    def _build(self) -> Packs:
        consulted: set[str] = set()
        try:
            packs = load_packs(self.paths, builtin=self.builtin, consulted=consulted)
        finally:
            self._templates = consulted or self._templates
        if not packs.ruleset.rules:
            # Most likely files caught mid-checkout or deleted by mistake: denying everything
            # is safe but surely not meant. Stop guard to run with no rules on purpose.
            where = ", ".join(map(str, self.paths)) or "the built-in packs"
            raise RuleError([Problem(where, 1, 1, "the new rule set has no rules at all")])
        return packs

    def _audit(self, action: str, reason: str, **extra: Any) -> None:
        try:
            self.audit.write(system_event(RELOAD_RULE_ID, action, reason, **extra))
        except AuditError as e:
            log.error("guard: %s", e)


def _walk(root: Path) -> Iterable[Path]:
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".") and d != "__pycache__"]
        base = Path(dirpath)
        yield from (base / f for f in filenames if not f.startswith(".") and
                    not f.endswith(("~", ".swp", ".swx", ".tmp")))


def _stat(p: Path) -> tuple[int, int] | None:
    try:
        st = p.stat()
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size


def _changed(before: Stamp, after: Stamp) -> list[str]:
    names = [k for k in after.keys() | before.keys() if before.get(k) != after.get(k)]
    shown = sorted(names)[:3]
    return shown + ([f"and {len(names) - 3} more"] if len(names) > 3 else [])
