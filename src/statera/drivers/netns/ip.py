"""Every change Statera makes to Linux networking goes through ``Ip``, which refuses any
command that could touch what the project does not own.

Rules, checked before a command runs:
* a command inside a namespace (``ip -n NS …``) must name one of our namespaces;
* a command in the root namespace may only create, change or delete links whose names carry
  our prefixes (bridges and the host ends of veth pairs), addresses and neighbour entries on
  those links, add our namespaces, or read;
* nothing may flush, and nothing may add or delete routes or rules in the root namespace.

Reading (``show``/``list``) is always allowed. The checks are deliberately simple and
conservative: a refused command is a bug to fix in the caller, never something to work around.
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
from collections.abc import Sequence
from typing import Any

from statera.domain.errors import StateraError

LOG = logging.getLogger(__name__)

NS_PREFIXES = ("stm-", "stt-", "statera-")      # management / tenant namespaces, test namespaces
LINK_PREFIXES = ("st-", "sv", "sb", "statera")  # bridges, veth host ends
_NAME = re.compile(r"\A[A-Za-z0-9_.-]{1,15}\Z")
_NS_NAME = re.compile(r"\A[A-Za-z0-9_.-]{1,64}\Z")
_FLAGS = {"-j", "-json", "-d", "-details", "-br", "-brief", "-4", "-6"}
_READ_VERBS = {"show", "list", "get", "lst", "sh", "ls"}


class UnsafeNetworkCommand(StateraError):
    """A command that could touch the host's own networking was refused."""


class IpError(StateraError):
    def __init__(self, args: Sequence[str], code: int, stderr: str) -> None:
        super().__init__(f"ip {' '.join(args)} failed ({code}): {stderr.strip()}")
        self.code = code
        self.stderr = stderr


def ours_ns(name: str) -> bool:
    return bool(_NS_NAME.match(name)) and name.startswith(NS_PREFIXES)


def ours_link(name: str) -> bool:
    return bool(_NAME.match(name)) and name.startswith(LINK_PREFIXES)


def check(args: Sequence[str]) -> None:
    """Raise UnsafeNetworkCommand unless ``ip <args>`` keeps to what Statera owns."""
    a = [x for x in args if x not in _FLAGS]
    if "flush" in a:
        raise UnsafeNetworkCommand("ip … flush is never allowed")
    if len(a) > 1 and a[0] == "-n":
        if not ours_ns(a[1]):
            raise UnsafeNetworkCommand(f"namespace {a[1]!r} is not Statera's")
        return
    # Root namespace from here on.
    if not a:
        raise UnsafeNetworkCommand("empty ip command")
    obj, rest = a[0], a[1:]
    verb = rest[0] if rest else "show"
    if verb in _READ_VERBS:
        return
    if obj == "netns":
        if verb in ("add", "del", "delete") and len(rest) == 2 and ours_ns(rest[1]):
            return
        if verb == "exec" and len(rest) >= 2 and ours_ns(rest[1]):
            return
        raise UnsafeNetworkCommand(f"ip netns {' '.join(rest)}: not one of our namespaces")
    # ip link add NAME type … [peer name X netns NS]; set NAME …; del NAME
    if obj == "link" and verb in ("add", "set", "del", "delete") and len(rest) >= 2:
        target = rest[2] if rest[1] == "dev" and len(rest) > 2 else rest[1]
        if not ours_link(target):
            raise UnsafeNetworkCommand(f"link {target!r} is not Statera's")
        if "netns" in rest:
            ns = rest[rest.index("netns") + 1] if rest[-1] != "netns" else ""
            if not ours_ns(ns):
                raise UnsafeNetworkCommand(f"namespace {ns!r} is not Statera's")
        if "master" in rest and not ours_link(rest[rest.index("master") + 1]):
            raise UnsafeNetworkCommand("only our bridges may be a master")
        return
    if obj in ("addr", "address", "a") and verb in ("add", "del", "delete", "replace"):
        dev = rest[rest.index("dev") + 1] if "dev" in rest else ""
        if ours_link(dev):
            return
        raise UnsafeNetworkCommand(f"address change on {dev!r}, which is not Statera's")
    # ip neigh replace ADDR lladdr MAC dev BRIDGE nud permanent; ip neigh del ADDR dev BRIDGE
    if obj in ("neigh", "neighbour", "neighbor") and verb in ("add", "replace", "change",
                                                              "del", "delete"):
        dev = rest[rest.index("dev") + 1] if "dev" in rest[:-1] else ""
        if ours_link(dev):
            return
        raise UnsafeNetworkCommand(f"neighbour change on {dev!r}, which is not Statera's")
    raise UnsafeNetworkCommand(f"ip {' '.join(args)} is not allowed in the root namespace")


NETNS_DIR = "/run/netns"


class Ip:
    """Runs checked ``ip`` commands. ``dry_run`` records instead of running (unit tests)."""

    def __init__(self, binary: str = "ip", dry_run: bool = False) -> None:
        self.binary = binary
        self.dry_run = dry_run
        self.ran: list[list[str]] = []

    def __call__(self, *args: str, check_rc: bool = True) -> str:
        check(args)
        self.ran.append(list(args))
        if self.dry_run:
            return ""
        proc = subprocess.run([self.binary, *args], capture_output=True, text=True, timeout=30)
        if check_rc and proc.returncode != 0:
            raise IpError(args, proc.returncode, proc.stderr)
        return proc.stdout

    def json(self, *args: str) -> Any:
        out = self("-j", *args)
        return json.loads(out) if out.strip() else []

    def in_ns(self, ns: str, *args: str, check_rc: bool = True) -> str:
        if not ours_ns(ns):
            raise UnsafeNetworkCommand(f"namespace {ns!r} is not Statera's")
        return self("-n", ns, *args, check_rc=check_rc)

    def namespaces(self) -> list[str]:
        if not self.dry_run:
            # What `ip netns list` reads, without a process per call (the health manager
            # asks every second).
            try:
                return sorted(os.listdir(NETNS_DIR))
            except FileNotFoundError:
                return []
        out = self("netns", "list")
        return [line.split()[0] for line in out.splitlines() if line.strip()]

    def link_exists(self, name: str, ns: str | None = None) -> bool:
        if ns is None and not self.dry_run:
            # This process lives in the root namespace: its sysfs lists the root's links.
            return "/" not in name and name not in (".", "..", "") and \
                os.path.exists(f"/sys/class/net/{name}")
        args = ("link", "show", "dev", name)
        try:
            if ns:
                self.in_ns(ns, *args)
            else:
                self(*args)
            return True
        except IpError:
            return False
