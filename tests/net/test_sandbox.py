"""The jail's sandbox (guard/net/sandbox.py) and seccomp filter, without a network: who the
command runs as, which of guard's paths are hidden, and how closed directories are shown.

What the sandbox does to a hostile command is tested with a real jail in
test_jail_boundary.py.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from guard.cli import jail as jail_cli
from guard.errors import NetError
from guard.net import sandbox, seccomp
from guard.net.sandbox import JailUser, Sandbox, choose_user
from guard.options import Options

NOBODY = JailUser(65534, 65534, "nobody", "/nonexistent")
needs_root = pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None,
                                reason="checks what another user can see (root, setpriv)")


@pytest.mark.parametrize("spec, environ, as_root, problem", [
    ("root", {}, False, "root can leave the jail"),
    ("0", {}, False, "--dangerously-run-as-root"),
    ("no-such-user-here", {}, False, "no user 'no-such-user-here'"),
    ("nobody", {}, True, "cannot be combined with --user nobody"),
])
def test_bad_users_are_refused_with_a_reason(spec, environ, as_root, problem):
    with pytest.raises(NetError, match=problem):
        choose_user(spec, as_root=as_root, environ=environ)


def test_the_default_user_is_whoever_ran_sudo_else_nobody():
    assert choose_user(None, environ={}).uid == 65534
    assert choose_user(None, environ={"SUDO_UID": "33", "SUDO_GID": "33"}).name == "www-data"
    assert choose_user(None, environ={"SUDO_UID": "0", "SUDO_GID": "0"}).uid == 65534


def test_a_uid_without_a_passwd_entry_runs_without_supplementary_groups():
    user = choose_user("4242", environ={})
    assert (user.uid, user.gid, user.name) == (4242, 4242, None)
    assert "--clear-groups" in user.setpriv() and "--pdeathsig=KILL" in user.setpriv()
    assert user.home_dir == "/tmp"


def test_root_is_only_given_by_the_loud_flag_and_then_without_setpriv():
    root = choose_user(None, as_root=True, environ={})
    assert root.is_root and root.setpriv() == []


@pytest.fixture
def place() -> Iterator[Path]:
    """A directory outside /tmp (which the jail replaces) that every user may enter."""
    path = Path(tempfile.mkdtemp(prefix="guard-sandbox-test-", dir="/var/tmp"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def build(place: Path, **kw: object) -> Sandbox:
    work = place / "work"
    work.mkdir(exist_ok=True)
    public = work / "public"
    public.mkdir(exist_ok=True)
    for d in (work, public):
        d.chmod(0o755)
    resolv = place / "resolv.conf"
    resolv.write_text("nameserver 10.213.0.1\n")
    # The tests' own cwd may be a checkout under /tmp (the jail's private /tmp hides it).
    kw.setdefault("cwd", Path("/"))
    return Sandbox(NOBODY, work, public, resolv_conf=resolv, **kw)  # type: ignore[arg-type]


def pairs(args: list[str], flag: str) -> list[tuple[str, str]]:
    return [(args[i + 1], args[i + 2]) for i, a in enumerate(args) if a == flag]


@needs_root
def test_the_sandbox_has_no_capabilities_and_its_own_namespaces(place):
    box = build(place)
    try:
        args = box.args
        for flag in ("--unshare-user", "--disable-userns", "--unshare-pid", "--unshare-ipc",
                     "--die-with-parent", "--seccomp"):
            assert flag in args
        assert args[args.index("--cap-drop") + 1] == "ALL"
        assert ("/", "/") in pairs(args, "--ro-bind")  # the host, read-only
        assert args.count("--tmpfs") >= 2 and {"/tmp", "/run"} <= {
            args[i + 1] for i, a in enumerate(args) if a == "--tmpfs"}
        argv = box.argv("guardjail-1", ["true"], info_fd=9)
        assert argv[:4] == ["ip", "netns", "exec", "guardjail-1"]
        assert argv[4] == "setpriv" and "--info-fd" in argv and argv[-2:] == ["--", "true"]
    finally:
        box.close()


@needs_root
def test_guards_paths_are_covered_where_the_command_could_reach_them(place):
    readable = place / "rules.yaml"
    readable.write_text("pack: x\n")
    closed = place / "closed"
    closed.mkdir(mode=0o700)
    (closed / "audit.jsonl").write_text("{}\n")
    confdir = place / "conf"
    confdir.mkdir()
    in_tmp = Path(tempfile.mkdtemp())  # /tmp is the jail's own: nothing to cover there
    try:
        box = build(place, hidden=[readable, closed / "audit.jsonl", confdir, in_tmp,
                                   place / "missing"])
        covered = dict(pairs(box.args, "--ro-bind"))
        box.close()
    finally:
        shutil.rmtree(in_tmp)
    assert covered[str(place / "work" / "hidden")] == str(readable)
    assert covered[str(place / "work" / "hidden.d")] == str(confdir)
    # (a dict keeps the last; every cover is one of the two placeholders)
    targets = [dst for _, dst in pairs(box.args, "--ro-bind")]
    assert str(closed / "audit.jsonl") not in targets  # nobody cannot reach it anyway
    assert str(in_tmp) not in targets and str(place / "missing") not in targets
    assert os.stat(place / "work" / "hidden").st_mode & 0o777 == 0


@needs_root
def test_a_readable_path_under_a_closed_directory_is_staged_and_the_rest_stays_hidden(place):
    closed = place / "closed"
    tool = closed / "toolchain"
    tool.mkdir(parents=True)
    closed.chmod(0o700)
    box = build(place, readable=[tool], writable=[place])
    try:
        assert ["--tmpfs", str(closed)] == box.args[box.args.index(str(closed)) - 1:][:2]
        assert "--remount-ro" in box.args
        assert box.staged == [(tool, place / "work" / "stage" / "0")]
        assert (str(place / "work" / "stage" / "0"), str(tool)) in pairs(box.args, "--ro-bind")
        assert (str(place), str(place)) in pairs(box.args, "--bind")
        argv = box.argv("ns", ["true"])
        assert argv[4:6] == ["sh", "-c"] and argv[6] == sandbox.STAGE_SCRIPT
        assert argv[7:10] == ["guard-jail", str(tool), str(place / "work" / "stage" / "0")]
    finally:
        box.close()


@needs_root
@pytest.mark.parametrize("what", ["readable", "writable"])
def test_guards_own_paths_cannot_be_exposed(place, what):
    state = place / "state"
    state.mkdir()
    with pytest.raises(NetError, match="guard's own and hidden"):
        build(place, hidden=[state], **{what: [state / "." if what == "readable" else state]})


@needs_root
def test_a_path_to_expose_must_exist(place):
    with pytest.raises(NetError, match="does not exist"):
        build(place, readable=[place / "nope"])


def test_every_run_option_that_holds_a_path_is_either_hidden_or_declared_public():
    with_paths = {name for name, f in Options.model_fields.items()
                  if "Path" in str(f.annotation) or name in ("rules", "world")}
    assert with_paths == set(jail_cli.PRIVATE_PATHS) | set(jail_cli.PUBLIC_PATHS)


def test_the_audit_logs_siblings_are_hidden_with_it(tmp_path):
    audit = tmp_path / "audit.jsonl"
    for name in ("audit.jsonl", "audit.jsonl.1", "audit.jsonl.torn", "other.txt"):
        (tmp_path / name).write_text("")
    cfg = Options(rules=[str(tmp_path / "rules")], audit=audit, confdir=tmp_path / "conf",
                    state=tmp_path / "state")
    found = {p.name for p in jail_cli.private_paths(cfg)}
    assert {"audit.jsonl", "audit.jsonl.1", "audit.jsonl.torn", "rules", "conf",
            "state"} <= found
    assert "other.txt" not in found


def test_the_filter_compiles_and_refuses_the_families_that_bypass_the_network(tmp_path):
    out = tmp_path / "f.bpf"
    with open(out, "wb") as f:
        seccomp.write_filter(f.fileno())
    size = out.stat().st_size
    assert size > 0 and size % 8 == 0  # whole BPF instructions
    refused = seccomp.refused_families()
    assert 40 in refused and 17 in refused  # AF_VSOCK, AF_PACKET
    assert not {1, 2, 10, 16} & set(refused)  # Unix (filtered separately), IPv4, IPv6, netlink
    with open(tmp_path / "g.bpf", "wb") as f:
        seccomp.write_filter(f.fileno(), unix_sockets=True)
    assert (tmp_path / "g.bpf").stat().st_size < size  # one rule fewer


@needs_root
def test_a_current_directory_the_user_cannot_enter_or_that_guard_hides_is_refused(place):
    closed = place / "closed"
    (closed / "project").mkdir(parents=True)
    closed.chmod(0o700)
    with pytest.raises(NetError, match="cannot enter the current directory .*--readable"):
        build(place, cwd=closed / "project")
    build(place, cwd=closed / "project", readable=[closed / "project"]).close()
    with pytest.raises(NetError, match="inside one of guard's own paths"):
        build(place, cwd=closed / "project", hidden=[closed])
