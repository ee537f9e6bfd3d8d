"""The seccomp filter of ``guard jail``: system calls a jailed command never needs.

The filter is compiled with libseccomp (through ctypes; Debian's ``libseccomp2``, which
apt itself depends on) and handed to bubblewrap as a BPF program (``bwrap --seccomp FD``).
Everything not listed is allowed: the jail's other locks (an unprivileged user without
capabilities, its own user, mount and PID namespaces, a network namespace whose only way
out is guard) do the main work; the filter removes kernel interfaces that are not
namespaced or that a sandbox escape typically starts from:

- namespaces and mounts: ``unshare``, ``setns``, ``clone`` with namespace flags,
  ``mount`` and the new mount API, ``pivot_root``, ``chroot``;
- kernel keyrings (``add_key``, ``keyctl``, ``request_key``: not namespaced), ``bpf``,
  ``perf_event_open``, ``userfaultfd``, ``io_uring`` (it runs requests outside the filter),
  module loading, ``kexec``, ``reboot``, clock setting, ``syslog``, ``open_by_handle_at``;
- ``ioctl(TIOCSTI)`` and ``ioctl(TIOCLINUX)``, which push keystrokes into a terminal the
  command shares with the person who started it;
- sockets of any family but IPv4, IPv6 and netlink. ``AF_VSOCK`` in particular talks to
  the hypervisor of a virtual machine without any network namespace in between. Unix
  sockets are refused too unless asked for (``unix_sockets``): a read-only mount does not
  stop ``connect()`` to a named socket, so any socket file on the host that the user may
  write (a docker or database socket) would be a way out. ``socketpair`` stays allowed
  (asyncio and libuv use it), and so does every descriptor the command inherits.

System calls of other ABIs (i386 ``int 0x80``, x32) kill the process.

>>> "keyctl" in DENIED and "ptrace" not in DENIED
True
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import platform
from collections.abc import Iterable

from guard.errors import NetError

# errno for each denied call: EPERM, or ENOSYS where the C library falls back to an older
# call when it sees ENOSYS (glibc's clone3 -> clone)
DENIED: dict[str, int] = {name: errno.EPERM for name in (
    "unshare", "setns", "mount", "umount", "umount2", "pivot_root", "chroot",
    "add_key", "keyctl", "request_key", "bpf", "perf_event_open", "userfaultfd",
    "io_uring_setup", "io_uring_enter", "io_uring_register",
    "init_module", "finit_module", "delete_module", "kexec_load", "kexec_file_load",
    "reboot", "swapon", "swapoff", "acct", "syslog", "settimeofday", "clock_settime",
    "clock_adjtime", "adjtimex", "iopl", "ioperm", "quotactl", "quotactl_fd",
    "lookup_dcookie", "nfsservctl", "uselib", "vm86", "vm86old", "_sysctl",
    "open_by_handle_at", "name_to_handle_at", "fanotify_init")}
DENIED.update({name: errno.ENOSYS for name in (
    "clone3", "open_tree", "move_mount", "fsopen", "fsconfig", "fsmount", "fspick",
    "mount_setattr")})

CLONE_NAMESPACES = {"CLONE_NEWNS": 0x00020000, "CLONE_NEWCGROUP": 0x02000000,
                    "CLONE_NEWUTS": 0x04000000, "CLONE_NEWIPC": 0x08000000,
                    "CLONE_NEWUSER": 0x10000000, "CLONE_NEWPID": 0x20000000,
                    "CLONE_NEWNET": 0x40000000, "CLONE_NEWTIME": 0x00000080}
TERMINAL_IOCTLS = {"TIOCSTI": 0x5412, "TIOCLINUX": 0x541C}
SOCKET_FAMILIES = {1: "AF_UNIX", 2: "AF_INET", 10: "AF_INET6", 16: "AF_NETLINK"}
AF_UNIX = 1
AF_MAX = 46
# clone's first argument is the flags on these (not on s390, for instance)
CLONE_FLAGS_FIRST = {"x86_64", "amd64", "aarch64", "arm64"}

_ACT_ALLOW = 0x7FFF0000
_ACT_KILL_PROCESS = 0x80000000
_FLTATR_ACT_BADARCH = 2
_CMP_GE, _CMP_MASKED_EQ = 5, 7
_U32 = 0xFFFFFFFF


class _ArgCmp(ctypes.Structure):
    _fields_ = [("arg", ctypes.c_uint), ("op", ctypes.c_int),
                ("datum_a", ctypes.c_uint64), ("datum_b", ctypes.c_uint64)]


def _errno(value: int) -> int:
    return 0x00050000 | (value & 0xFFFF)


def _library() -> ctypes.CDLL:
    name = ctypes.util.find_library("seccomp") or "libseccomp.so.2"
    try:
        lib = ctypes.CDLL(name, use_errno=True)
    except OSError as e:
        raise NetError("guard jail needs libseccomp (apt-get install libseccomp2)") from e
    lib.seccomp_init.restype = ctypes.c_void_p
    lib.seccomp_init.argtypes = [ctypes.c_uint32]
    lib.seccomp_release.argtypes = [ctypes.c_void_p]
    lib.seccomp_attr_set.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_uint32]
    lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    lib.seccomp_rule_add_array.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int,
                                           ctypes.c_uint, ctypes.POINTER(_ArgCmp)]
    lib.seccomp_export_bpf.argtypes = [ctypes.c_void_p, ctypes.c_int]
    return lib


def write_filter(fd: int, *, unix_sockets: bool = False) -> None:
    """Write the compiled filter (a BPF program for this machine's ABI) to ``fd``."""
    lib = _library()
    ctx = lib.seccomp_init(_ACT_ALLOW)
    if not ctx:
        raise NetError("seccomp_init failed")
    try:
        _check(lib.seccomp_attr_set(ctx, _FLTATR_ACT_BADARCH, _ACT_KILL_PROCESS),
               "seccomp_attr_set")
        for name, code in DENIED.items():
            _rule(lib, ctx, name, _errno(code), [])
        if platform.machine().lower() in CLONE_FLAGS_FIRST:
            for flag in CLONE_NAMESPACES.values():
                _rule(lib, ctx, "clone", _errno(errno.EPERM), [(0, _CMP_MASKED_EQ, flag, flag)])
        for request in TERMINAL_IOCTLS.values():
            _rule(lib, ctx, "ioctl", _errno(errno.EPERM), [(1, _CMP_MASKED_EQ, _U32, request)])
        for family in refused_families():
            _rule(lib, ctx, "socket", _errno(errno.EAFNOSUPPORT),
                  [(0, _CMP_MASKED_EQ, _U32, family)])
        if not unix_sockets:
            _rule(lib, ctx, "socket", _errno(errno.EPERM), [(0, _CMP_MASKED_EQ, _U32, AF_UNIX)])
        # also any value with bits above the known families (the kernel truncates to int)
        _rule(lib, ctx, "socket", _errno(errno.EAFNOSUPPORT), [(0, _CMP_GE, AF_MAX, 0)])
        _check(lib.seccomp_export_bpf(ctx, fd), "seccomp_export_bpf")
    finally:
        lib.seccomp_release(ctx)


def refused_families() -> list[int]:
    """Socket families the jail refuses: all below AF_MAX but Unix, IPv4, IPv6 and netlink.

    >>> 40 in refused_families() and 2 not in refused_families()  # AF_VSOCK, AF_INET
    True
    """
    return [f for f in range(AF_MAX) if f not in SOCKET_FAMILIES]


def _rule(lib: ctypes.CDLL, ctx: int, name: str, action: int,
          compare: Iterable[tuple[int, int, int, int]]) -> None:
    number = lib.seccomp_syscall_resolve_name(name.encode())
    if number < 0:
        return  # not a system call of this architecture (vm86 off i386, for instance)
    args = [_ArgCmp(arg, op, a, b) for arg, op, a, b in compare]
    array = (_ArgCmp * len(args))(*args) if args else None
    _check(lib.seccomp_rule_add_array(ctx, action, number, len(args), array),
           f"seccomp rule for {name}")


def _check(result: int, what: str) -> None:
    if result < 0:
        raise NetError(f"{what} failed: {os.strerror(-result)}")
