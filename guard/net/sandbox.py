"""The command's side of ``guard jail``: a bubblewrap sandbox inside the jail's network.

guard builds the network (:mod:`guard.net.jail`) and runs the proxy; bubblewrap
(``bwrap``) builds everything else the command sees::

    ip netns exec guardjail-PID            the jail's network namespace
      setpriv --reuid U --regid G ...      an unprivileged user (never root by default)
        bwrap --unshare-user --disable-userns --unshare-pid --unshare-ipc ...
              --cap-drop ALL --seccomp FD  no capabilities, no_new_privs, the filter
              --ro-bind / / --dev /dev --proc /proc --tmpfs /tmp --tmpfs /run ...
          COMMAND

The command's filesystem is the host's, read-only, with a private ``/tmp``, ``/run``
(where the host keeps its network namespace handles and most service sockets), ``/dev``
and ``/proc`` (its own PID namespace: guard's processes do not exist there). On top:

- ``writable`` paths are bound read-write;
- ``readable`` paths are shown even when a directory above them is closed to the user
  (a toolchain under ``/root``): that directory becomes an empty read-only tmpfs with only
  the readable path in it, so nothing else the user could not see before shows;
- ``hidden`` paths (guard's confdir, rules, state, audit log and keys, and ``--hide``)
  are covered with an empty placeholder of mode 000 wherever the command could reach them.

>>> JailUser(65534, 65534, "nobody", "/nonexistent").home_dir
'/tmp'
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from guard.errors import NetError
from guard.net import seccomp

# Directories the jail replaces with its own (never the host's): exposing a path under them
# needs a bind by file descriptor, and a hidden path under them is not there to hide.
REPLACED = (Path("/tmp"), Path("/run"), Path("/dev"), Path("/proc"))
ROOT_FLAG = "--dangerously-run-as-root"
# run as root in the jail's private mount namespace, before becoming the user:
# `sh -c STAGE_SCRIPT guard-jail SRC1 POINT1 SRC2 POINT2 ... -- COMMAND...`
STAGE_SCRIPT = ('while [ "$1" != -- ]; do mount --bind -- "$1" "$2" || exit 125; shift 2; '
                'done; shift; exec "$@"')


@dataclass(frozen=True)
class JailUser:
    """Who the command runs as."""

    uid: int
    gid: int
    name: str | None  # None: a uid without a passwd entry
    home: str

    @property
    def is_root(self) -> bool:
        return self.uid == 0

    @property
    def home_dir(self) -> str:
        """HOME for the command: the user's home if it exists, else the private /tmp."""
        return self.home if self.home and Path(self.home).is_dir() else "/tmp"

    def setpriv(self) -> list[str]:
        """The ``setpriv`` command that becomes this user (empty for root)."""
        if self.is_root:
            return []
        groups = "--init-groups" if self.name is not None else "--clear-groups"
        return ["setpriv", f"--reuid={self.uid}", f"--regid={self.gid}", groups,
                "--pdeathsig=KILL", "--"]


def choose_user(spec: str | None, *, as_root: bool = False,
                environ: Mapping[str, str] | None = None) -> JailUser:
    """The jail's user: ``spec`` (a name or uid), else whoever ran ``sudo``, else nobody.

    Root is refused unless ``as_root`` (``--dangerously-run-as-root``) says so.

    >>> choose_user(None, environ={}).name, choose_user(None, environ={"SUDO_UID": "0"}).uid
    ('nobody', 65534)
    """
    environ = os.environ if environ is None else environ
    if as_root:
        if spec not in (None, "root", "0"):
            raise NetError(f"{ROOT_FLAG} runs the command as root; it cannot be combined with "
                           f"--user {spec}")
        return JailUser(0, 0, "root", "/root")
    gid: int | None = None
    if spec is None:
        sudo_uid, sudo_gid = environ.get("SUDO_UID", ""), environ.get("SUDO_GID", "")
        if sudo_uid.isascii() and sudo_uid.isdigit() and sudo_uid != "0":
            numeric_gid = sudo_gid.isascii() and sudo_gid.isdigit()
            spec, gid = sudo_uid, int(sudo_gid) if numeric_gid else None
        else:
            spec = "nobody"
    user = _lookup(spec, gid)
    if user.is_root:
        raise NetError("the jailed command would run as root (uid 0), and root can leave the "
                       "jail; choose an unprivileged --user, or pass "
                       f"{ROOT_FLAG} for a trusted command")
    return user


def _lookup(spec: str, gid: int | None) -> JailUser:
    try:
        numeric = spec.isascii() and spec.isdigit()
        entry = pwd.getpwuid(int(spec)) if numeric else pwd.getpwnam(spec)
    except KeyError:
        if not (spec.isascii() and spec.isdigit()):
            raise NetError(f"no user {spec!r} (give a user name or a numeric uid)") from None
        uid = int(spec)
        return JailUser(uid, uid if gid is None else gid, None, "")
    return JailUser(entry.pw_uid, entry.pw_gid if gid is None else gid, entry.pw_name,
                    entry.pw_dir)


def reachable(user: JailUser, paths: Iterable[Path]) -> set[Path]:
    """Which of ``paths`` ``user`` can see (stat) on this host: the kernel decides.

    Runs one ``sh`` as the user; root sees everything.
    """
    paths = sorted(set(paths))
    if user.is_root or not paths:
        return set(paths)
    script = 'for p do if [ -e "$p" ] || [ -L "$p" ]; then printf "%s\\0" "$p"; fi; done'
    done = subprocess.run(user.setpriv() + ["sh", "-c", script, "sh", *map(str, paths)],
                          capture_output=True)
    if done.returncode != 0:
        raise NetError(f"cannot check what user {user.uid} can see: "
                       f"{done.stderr.decode(errors='replace').strip()}")
    return {Path(p.decode()) for p in done.stdout.split(b"\0") if p}


def under(path: Path, parents: Iterable[Path]) -> bool:
    """``path`` is one of ``parents`` or inside one.

    >>> under(Path("/tmp/x"), [Path("/tmp")]), under(Path("/tmpx"), [Path("/tmp")])
    (True, False)
    """
    return any(path == p or p in path.parents for p in parents)


def _real(paths: Iterable[Path | str]) -> list[Path]:
    return [Path(os.path.realpath(p)) for p in paths]


class Sandbox:
    """The command line that starts a command in the sandbox, for one jail.

    ``workdir`` (root's, made by the caller) receives the seccomp filter, the placeholders
    that cover hidden paths and the mount points of staged paths; ``public`` (inside it,
    world-readable) is shown to the command read-only at its own path.

    Paths the user cannot reach on the host (``--readable /root/.pyenv``) cannot be given
    to bubblewrap, which resolves every source as the user: a root shell in the jail's
    private mount namespace (the one ``ip netns exec`` makes) first binds each onto a
    mount point under ``workdir/stage``, and bubblewrap binds from there.
    """

    def __init__(self, user: JailUser, workdir: Path, public: Path, *, resolv_conf: Path,
                 readable: Sequence[Path | str] = (), writable: Sequence[Path | str] = (),
                 hidden: Sequence[Path | str] = (), unix_sockets: bool = False,
                 cwd: Path | None = None) -> None:
        self.user = user
        self.workdir = workdir
        self.args: list[str] = []
        self.staged: list[tuple[Path, Path]] = []  # (source, mount point) bound by root
        self.fds: list[int] = []  # to pass to the child (the seccomp filter)
        try:
            self._build(Path(os.path.realpath(public)), resolv_conf, _real(readable),
                        _real(writable), [p for p in _real(hidden) if os.path.lexists(p)],
                        unix_sockets, Path(os.path.realpath(cwd or os.getcwd())))
        except BaseException:
            self.close()
            raise

    def argv(self, netns: str, command: Sequence[str], *, info_fd: int | None = None
             ) -> list[str]:
        """The whole command: enter the network, stage, become the user, build the sandbox.

        With ``info_fd``, bubblewrap writes its JSON report there (``child-pid``: the pid,
        outside, of the jail's process 1).
        """
        info = ["--info-fd", str(info_fd)] if info_fd is not None else []
        inner = [*self.user.setpriv(), "bwrap", *info, *self.args, "--", *command]
        if not self.staged:
            return ["ip", "netns", "exec", netns, *inner]
        pairs = [str(p) for source, point in self.staged for p in (source, point)]
        return ["ip", "netns", "exec", netns, "sh", "-c", STAGE_SCRIPT, "guard-jail", *pairs,
                "--", *inner]

    def close(self) -> None:
        for fd in self.fds:
            os.close(fd)
        self.fds.clear()

    def _build(self, public: Path, resolv_conf: Path, readable: list[Path],
               writable: list[Path], hidden: list[Path], unix_sockets: bool, cwd: Path
               ) -> None:
        exposed = [(p, False) for p in readable] + [(p, True) for p in writable]
        exposed.append((public, False))
        for path, _ in exposed:
            if not path.exists():
                raise NetError(f"{path} does not exist (given to --readable or --writable)")
            if under(path, hidden):
                raise NetError(f"{path} is guard's own and hidden from the jail; it cannot be "
                               "made readable or writable")
        replaced = list(REPLACED)
        if Path("/var/run").is_dir() and not Path("/var/run").is_symlink():
            replaced.append(Path("/var/run"))
        ancestors = {a for path, _ in exposed for a in path.parents}
        seen = reachable(self.user, ancestors | {p for p, _ in exposed} | set(hidden) | {cwd})
        if under(cwd, hidden):
            raise NetError(f"the current directory {cwd} is inside one of guard's own paths, "
                           "which the jail hides; start guard jail from another directory")
        if not (cwd in seen and not under(cwd, replaced)) and not under(
                cwd, [p for p, _ in exposed if p != public]):
            who = self.user.name or f"uid {self.user.uid}"
            raise NetError(f"the jail's user ({who}) cannot enter the current directory "
                           f"{cwd}: give --readable {cwd} (or --writable), another --user, or "
                           "start guard jail from another directory")
        args = self.args
        if not self.user.is_root:
            args += ["--unshare-user", "--disable-userns", "--cap-drop", "ALL"]
        args += ["--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
                 "--die-with-parent", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
        args += [a for d in replaced if d.name in ("tmp", "run") for a in ("--tmpfs", str(d))]
        # the jail's resolver, where the host's /etc/resolv.conf really is (it may be a link
        # into /run, which the jail replaced)
        args += ["--ro-bind", str(resolv_conf), os.path.realpath("/etc/resolv.conf")]
        covers: list[Path] = []
        binds: list[tuple[Path, Path, bool]] = []  # source, destination, writable
        for path, rw in sorted(exposed, key=lambda e: len(e[0].parts)):
            source = path
            if path not in seen:
                if not under(path, replaced) and not under(path, covers):
                    covers.append(_blocking(path, seen))
                source = self._stage(path)
            if rw or source != path or under(path, replaced) or under(path, covers):
                binds.append((source, path, rw))
        args += [a for cover in covers for a in ("--tmpfs", str(cover))]
        for source, path, rw in binds:
            args += ["--bind" if rw else "--ro-bind", str(source), str(path)]
        args += [a for cover in covers for a in ("--remount-ro", str(cover))]
        self._hide(hidden, seen, replaced, covers, [p for p, _ in exposed])
        args += ["--chdir", str(cwd), "--seccomp", self._filter(unix_sockets)]

    def _stage(self, path: Path) -> Path:
        stage = self.workdir / "stage"
        stage.mkdir(exist_ok=True)
        point = stage / str(len(self.staged))
        if path.is_dir():
            point.mkdir()
        else:
            point.touch()
        for made in (stage, point):
            made.chmod(0o755)  # bubblewrap, as the user, must reach the mount point
        self.staged.append((path, point))
        return point

    def _hide(self, hidden: list[Path], seen: set[Path], replaced: list[Path],
              covers: list[Path], exposed: list[Path]) -> None:
        """Cover every hidden path the command could reach with an empty placeholder."""
        empty_dir, empty_file = self.workdir / "hidden.d", self.workdir / "hidden"
        empty_dir.mkdir(exist_ok=True)
        empty_file.touch(exist_ok=True)
        empty_dir.chmod(0o000)
        empty_file.chmod(0o000)
        done: list[Path] = []
        for path in sorted(hidden, key=lambda p: len(p.parts)):
            visible = ((path in seen and not under(path, replaced) and not under(path, covers))
                       or under(path, exposed))
            if not visible or under(path, done):
                continue
            placeholder = empty_dir if path.is_dir() else empty_file
            self.args += ["--ro-bind", str(placeholder), str(path)]
            done.append(path)

    def _filter(self, unix_sockets: bool) -> str:
        path = self.workdir / "seccomp.bpf"
        with open(path, "wb") as out:
            seccomp.write_filter(out.fileno(), unix_sockets=unix_sockets)
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        self.fds.append(fd)
        return str(fd)


def _blocking(path: Path, seen: set[Path]) -> Path:
    """The directory above ``path`` that the user can see but not search (the topmost)."""
    chain = [*reversed(path.parents), path]  # /, /a, /a/b, ..., path
    for parent, child in zip(chain, chain[1:], strict=False):
        if child not in seen:
            if parent == Path("/"):
                break
            return parent
    raise NetError(f"{path}: the jail's user cannot see {path}, and no directory above it "
                   "can be replaced to show it")


def missing() -> list[str]:
    """Packages the sandbox needs that are not installed."""
    return [] if shutil.which("bwrap") else ["bubblewrap"]
