"""A real data plane for end-to-end tests: ``statera up`` with the netns compute, bridge
network and REST amphora drivers, its own management and tenant bridges (unique names, CIDRs
no host network uses), its own nftables table, and member namespaces running small HTTP
servers on the tenant bridge. The client is the host.

``Testbed.start(workdir, members=2, extra_conf="")`` builds it; ``close()`` removes
everything it or statera made (namespaces, veths, bridges, nft table, processes by PID), also
after a failure. The end-to-end tests (one testbed per test module, fixture ``bed`` in
tests/e2e/conftest.py) and the data-plane benchmarks use it. Needs root, iproute2 and haproxy.
"""

from __future__ import annotations

import configparser
import contextlib
import io
import ipaddress
import os
import secrets
import shutil
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench.common import free_port
from statera.drivers.netns.amphora_ns import AmphoraNames, delete_namespace, unplug_veth
from statera.drivers.netns.host import foreign_networks, remove_bridge, remove_isolation
from statera.drivers.netns.ip import Ip
from statera.drivers.netns.ip import check as check_ip

BIN = Path(sys.executable).parent
MEMBER_PORT = 8080
# A member: answers GET / with its name; GET /slow?s=N streams for N seconds (one chunk per
# second); GET /health answers 200 unless the file <workdir>/<name>.down exists (then 503);
# GET /app-cookie* also sets the cookie APPSESSION=session-of-<name>.
MEMBER_SERVER = """
import http.server, os, sys, time
name, flag, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
body = name.encode()
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        if self.path.startswith("/health"):
            code = 503 if os.path.exists(flag) else 200
            self.send_response(code); self.send_header("Content-Length", str(len(body)))
            self.end_headers(); self.wfile.write(body); return
        if self.path.startswith("/slow"):
            seconds = float(self.path.partition("s=")[2] or "5")
            self.send_response(200); self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                self.wfile.write(b"%x\\r\\n%s\\r\\n" % (len(body), body)); self.wfile.flush()
                time.sleep(min(1.0, max(0.0, end - time.monotonic())))
            self.wfile.write(b"%x\\r\\n%s\\r\\n0\\r\\n\\r\\n" % (len(body), body)); return
        self.send_response(200); self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Member", name)
        if self.path.startswith("/app-cookie"):
            self.send_header("Set-Cookie", "APPSESSION=session-of-" + name)
        self.end_headers(); self.wfile.write(body)
    def log_message(self, *a): pass
http.server.ThreadingHTTPServer(("0.0.0.0", port), H).serve_forever()
"""


def merge_ini(base: str, extra: str) -> str:
    """``base`` with ``extra``'s options added or overriding, section by section."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(base)
    more = configparser.ConfigParser(interpolation=None)
    more.optionxform = str  # type: ignore[assignment,method-assign]
    more.read_string(extra)
    for section in more.sections():
        if not parser.has_section(section):
            parser.add_section(section)
        for key, value in more.items(section, raw=True):
            if key not in more.defaults() or section == "DEFAULT":
                parser.set(section, key, value)
    for key, value in more.defaults().items():
        parser.set("DEFAULT", key, value)
    out = io.StringIO()
    parser.write(out)
    return out.getvalue()


def missing_requirements() -> str | None:
    """Why a testbed cannot be built here, or None."""
    if os.geteuid() != 0:
        return "needs root (namespaces, bridges, nftables)"
    for tool in ("haproxy", "ip", "nft"):
        if shutil.which(tool) is None:
            return f"needs {tool}"
    return None


def free_cidrs(ip: Ip, count: int, prefixlen: int = 24) -> list[ipaddress.IPv4Network]:
    """``count`` networks of ``prefixlen`` (16-24; /24 by default) in 10.240.0.0/12 that no
    host network (nor each other) overlaps."""
    if not 16 <= prefixlen <= 24:
        raise ValueError(f"prefixlen must be 16-24, not {prefixlen}")
    used = [u for u in foreign_networks(ip) if u.version == 4 and u.prefixlen > 0]
    out: list[ipaddress.IPv4Network] = []
    for _ in range(500):
        net = ipaddress.IPv4Network(
            f"10.{240 + secrets.randbelow(15)}.{secrets.randbelow(256)}.0/{prefixlen}",
            strict=False)
        if not any(net.overlaps(u) for u in used + out):
            out.append(net)
        if len(out) == count:
            return out
    raise AssertionError("no free CIDRs")


def in_namespace(namespace: str, argv: list[str]) -> list[str]:
    """The command line running ``argv`` inside one of our namespaces (checked by the guard)."""
    args = ["netns", "exec", namespace, *argv]
    check_ip(args)
    return ["ip", *args]


@dataclass
class Member:
    name: str
    namespace: str
    address: str
    host_veth: str
    flag: Path
    process: subprocess.Popen[bytes] | None = None

    def set_healthy(self, healthy: bool) -> None:
        """The member's /health answer: 200 when healthy, 503 when not."""
        if healthy:
            self.flag.unlink(missing_ok=True)
        else:
            self.flag.touch()


@dataclass
class Testbed:
    __test__ = False  # not a test class, despite the name
    workdir: Path
    ip: Ip
    tag: str
    url: str
    tenant_net: ipaddress.IPv4Network
    tenant_bridge: str
    mgmt_bridge: str
    nft_table: str
    members: list[Member] = field(default_factory=list)
    # Further tenant networks (``extra_networks``): (network name, CIDR, bridge).
    extra_networks: list[tuple[str, ipaddress.IPv4Network, str]] = field(default_factory=list)
    up: subprocess.Popen[bytes] | None = None
    _log: Any = None

    @property
    def log_path(self) -> Path:
        return self.workdir / "statera.log"

    def log_tail(self, chars: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]

    def api(self, project: str = "p1") -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"X-Project-Id": project}, timeout=30)

    @classmethod
    def start(cls, workdir: Path, members: int = 2, extra_conf: str = "",
              extra_networks: int = 0, prefixlen: int = 24) -> Testbed:
        """``prefixlen`` < 24 (e.g. 22 for hundreds of amphorae) sizes the management and
        tenant networks; the tenant network's VIPs then come from its second /24 on, so they
        never take an address of the members and clients (which sit in the first /24)."""
        problem = missing_requirements()
        if problem:
            raise RuntimeError(f"cannot build a data-plane testbed: {problem}")
        ip = Ip()
        tag = secrets.token_hex(3)
        mgmt_net, tenant_net, *others = free_cidrs(ip, 2 + extra_networks, prefixlen)
        port = free_port()
        bed = cls(workdir=workdir, ip=ip, tag=tag, url=f"http://127.0.0.1:{port}",
                  tenant_net=tenant_net, tenant_bridge=f"st-p{tag}", mgmt_bridge=f"st-m{tag}",
                  nft_table=f"statera_t{tag}")
        for n, net in enumerate(others):
            bed.extra_networks.append((f"extra{n}{tag}", net, f"st-x{n}{tag}"))
        more = "".join(f"[network:{name}]\ncidr = {net}\nbridge = {bridge}\n"
                       for name, net, bridge in bed.extra_networks)
        pool = ""
        if prefixlen < 24:
            pool = (f"allocation_pool = {tenant_net.network_address + 256}-"
                    f"{tenant_net.broadcast_address - 1}")
        base = f"""
[DEFAULT]
state_path = {workdir / 'state'}
[api_settings]
bind_port = {port}
[controller_worker]
compute_driver = compute_netns_driver
network_driver = network_bridge_driver
amphora_driver = amphora_haproxy_rest_driver
[haproxy_amphora]
default_connection_limit = 2000
[netns]
mgmt_bridge = {bed.mgmt_bridge}
mgmt_cidr = {mgmt_net}
nft_table = {bed.nft_table}
[network:tenant{tag}]
cidr = {tenant_net}
bridge = {bed.tenant_bridge}
{pool}
{more}
"""
        (workdir / "statera.conf").write_text(merge_ini(base, extra_conf))
        try:
            bed._log = open(bed.log_path, "ab")  # noqa: SIM115
            bed.run_statera()
            hosts = list(tenant_net.hosts())
            for i in range(members):
                bed.add_member(f"member{i}", str(hosts[49 + i]))
        except BaseException:
            bed.close()
            raise
        return bed

    def run_statera(self, **env: str) -> None:
        """(Re)start ``statera up`` on this testbed's config, with ``env`` added to its
        environment, and wait until the API answers. A running one is killed first (-9:
        crash tests use this to restart after a fault)."""
        if self.up is not None and self.up.poll() is None:
            self.up.kill()
            self.up.wait()
        conf = self.workdir / "statera.conf"
        self.up = subprocess.Popen([str(BIN / "statera"), "--config", str(conf), "up"],
                                   stdout=self._log, stderr=subprocess.STDOUT,
                                   env={**os.environ, **env})
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(self.url + "/", timeout=1)
                return
            except httpx.HTTPError:
                assert self.up.poll() is None and time.monotonic() < deadline, self.log_tail()
                time.sleep(0.1)

    def add_member(self, name: str, address: str, network: int | None = None,
                   command: list[str] | None = None) -> Member:
        """A namespace on the tenant bridge (or on extra network ``network``) at ``address``
        running the member server (or ``command``, which must listen on MEMBER_PORT)."""
        member = self.add_namespace(name, address, network)
        self.start_member(member, command)
        return member

    def add_namespace(self, name: str, address: str, network: int | None = None) -> Member:
        """A namespace like a member's with nothing running in it yet (a client, a proxy under
        test...); ``close()`` removes it with the members."""
        bridge, prefixlen = self.tenant_bridge, self.tenant_net.prefixlen
        if network is not None:
            _, net, bridge = self.extra_networks[network]
            prefixlen = net.prefixlen
        i = len(self.members)
        member = Member(name=name, namespace=f"statera-m{self.tag}{i}", address=address,
                        host_veth=f"sbm{self.tag}{i}", flag=self.workdir / f"{name}.down")
        self.members.append(member)
        ip, ns = self.ip, member.namespace
        ip("netns", "add", ns)
        ip.in_ns(ns, "link", "set", "lo", "up")
        ip("link", "add", member.host_veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
        ip("link", "set", member.host_veth, "master", bridge, "up")
        ip.in_ns(ns, "addr", "add", f"{address}/{prefixlen}", "dev", "eth0")
        ip.in_ns(ns, "link", "set", "eth0", "up")
        return member

    def start_member(self, member: Member, command: list[str] | None = None,
                     port: int = MEMBER_PORT, own_session: bool = False) -> None:
        """The member server in the member's namespace, or ``command`` instead (listening on
        ``port``); returns once the port answers. ``stop_member``/``close()`` end it by PID.
        ``own_session``: schedule it like the agent's HAProxy (a session, so an autogroup,
        of its own) rather than with the caller's processes."""
        argv = command or [sys.executable, "-c", MEMBER_SERVER, member.name,
                           str(member.flag), str(MEMBER_PORT)]
        member.process = subprocess.Popen(in_namespace(member.namespace, argv),
                                          start_new_session=own_session)
        probe = f"import socket; socket.create_connection(('127.0.0.1', {port}), 1)"
        deadline = time.monotonic() + 10
        while subprocess.run(["ip", "netns", "exec", member.namespace, sys.executable, "-c",
                              probe], capture_output=True).returncode != 0:
            assert member.process.poll() is None, f"member {member.name} exited"
            assert time.monotonic() < deadline, f"member {member.name} did not start"
            time.sleep(0.05)

    def stop_member(self, member: Member) -> None:
        if member.process is not None:
            member.process.kill()
            member.process.wait()
            member.process = None

    def close(self) -> None:
        ip = self.ip
        for member in self.members:
            self.stop_member(member)
        if self.up is not None:
            self.up.terminate()
            try:
                self.up.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.up.kill()
                self.up.wait()
        if self._log is not None:
            self._log.close()
        # The amphorae statera made: remove any it left (a failed test must not leak).
        leftovers = self.workdir / "state" / "netns" / "amphorae"
        for home in (leftovers.iterdir() if leftovers.exists() else []):
            names = AmphoraNames(home.name)
            for index in range(8):
                unplug_veth(ip, names.tenant_veth(index))
            unplug_veth(ip, names.mgmt_veth)
            delete_namespace(ip, names.tenant_ns)
            delete_namespace(ip, names.mgmt_ns)
            shutil.rmtree(names.socket_dir, ignore_errors=True)
        for member in self.members:
            delete_namespace(ip, member.namespace)
            # The veth usually goes with the namespace, asynchronously: it may vanish between
            # the check and the delete.
            if ip.link_exists(member.host_veth):
                ip("link", "del", member.host_veth, check_rc=False)
        remove_bridge(ip, self.tenant_bridge)
        for _, _, bridge in self.extra_networks:
            remove_bridge(ip, bridge)
        remove_bridge(ip, self.mgmt_bridge)
        remove_isolation(self.nft_table)

    # --- helpers for tests -------------------------------------------------------------

    def subnet_id(self, client: httpx.Client) -> str:
        subnets = client.get("/v2.0/subnets").json()["subnets"]
        return next(s["id"] for s in subnets if s["cidr"] == str(self.tenant_net))

    def wait_active(self, client: httpx.Client, path: str, key: str,
                    timeout: float = 30) -> dict[str, Any]:
        """Poll until provisioning_status is ACTIVE or ERROR; asserts ACTIVE."""
        deadline = time.monotonic() + timeout
        while True:
            obj: dict[str, Any] = client.get(path).json()[key]
            if obj["provisioning_status"] in ("ACTIVE", "ERROR"):
                break
            assert time.monotonic() < deadline, f"{path} still {obj['provisioning_status']}"
            time.sleep(0.05)
        assert obj["provisioning_status"] == "ACTIVE", self.log_tail()
        return obj

    def wait_lb_active(self, client: httpx.Client, lb_id: str,
                       timeout: float = 30) -> dict[str, Any]:
        return self.wait_active(client, f"/v2/lbaas/loadbalancers/{lb_id}", "loadbalancer",
                                timeout)

    @staticmethod
    def answers(vip: str, count: int, timeout: float = 15.0, port: int = 80) -> list[str]:
        """Up to ``count`` bodies of GET http://vip:port/ from the host (each a member's
        name), retrying refused or failed requests until ``timeout``."""
        seen: list[str] = []
        deadline = time.monotonic() + timeout
        while len(seen) < count and time.monotonic() < deadline:
            try:
                seen.append(httpx.get(f"http://{vip}:{port}/", timeout=2).text)
            except httpx.HTTPError:
                time.sleep(0.05)
        return seen

    def diagnose(self) -> str:
        out = []
        for ns in self.ip.namespaces():
            if ns.startswith(("stt-", "stm-")):
                out.append(f"--- {ns}")
                for cmd in (["ip", "-n", ns, "-br", "addr"], ["ip", "netns", "pids", ns],
                            ["ip", "netns", "exec", ns, "ss", "-ltn"]):
                    out.append(subprocess.run(cmd, capture_output=True, text=True).stdout)
        out.append(self.log_tail())
        return "\n".join(out)

    def leftovers(self, amphora_ids: list[str] | None = None) -> list[str]:
        """Amphora namespaces, veths and state directories still on the host: of the given
        ``amphora_ids`` (see ``amphora_ids()``), by default of every amphora this testbed's
        Statera ever recorded — never another testbed's, which may run at the same time."""
        state = self.workdir / "state" / "netns" / "amphorae"
        found = [str(p) for p in state.glob("*")
                 if amphora_ids is None or p.name in amphora_ids]
        if amphora_ids is None:
            amphora_ids = self.recorded_amphorae()
        keys = [AmphoraNames(a).key for a in amphora_ids]
        found += [ns for ns in self.ip.namespaces() if ns.startswith(("stm-", "stt-"))
                  and ns[4:] in keys]
        found += [line for line in self.ip("-br", "link").splitlines()
                  if line.startswith(("sv", "sb")) and not line.startswith("sbm")
                  and line[2:12] in keys]
        return found

    def recorded_amphorae(self) -> list[str]:
        """Every amphora id in this testbed's database (deleted ones included)."""
        db = self.workdir / "state" / "statera.db"
        if not db.exists():
            return []
        with contextlib.closing(sqlite3.connect(db)) as conn:
            return [row[0] for row in conn.execute("SELECT id FROM amphora")]

    def amphora_ids(self, client: httpx.Client, lb_id: str) -> list[str]:
        """The load balancer's amphorae (admin API; the testbed runs without auth)."""
        r = client.get("/v2/octavia/amphorae", params={"loadbalancer_id": lb_id})
        assert r.status_code == 200, r.text
        return [a["id"] for a in r.json()["amphorae"]]

    # --- probes from inside a namespace (isolation and client tests) --------------------

    @property
    def host_address(self) -> str:
        """The host's address on the tenant bridge (the network's gateway_ip default)."""
        return str(next(self.tenant_net.hosts()))

    def run_in(self, namespace: str, code: str, *args: str,
               timeout: float = 30) -> subprocess.CompletedProcess[str]:
        """``python -c code args...`` inside one of our namespaces (bounded in time)."""
        return subprocess.run(in_namespace(namespace, [sys.executable, "-c", code, *args]),
                              capture_output=True, text=True, timeout=timeout)

    def probe(self, namespace: str, host: str, port: int, udp: bool = False,
              timeout: float = 1.0) -> str:
        """Try ``host:port`` from ``namespace``: "open" (a TCP connect succeeded, or a UDP
        datagram was answered), "refused" (a RST or ICMP port-unreachable came back: the
        packet reached a stack), "timeout" (nothing came back) or "unreachable" (no route)."""
        done = self.run_in(namespace, PROBE, host, str(port), "udp" if udp else "tcp",
                           str(timeout), timeout=timeout + 10)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    def http_in(self, namespace: str, url: str, timeout: float = 5.0) -> tuple[int, str]:
        """GET ``url`` from ``namespace``: (status, body), or (0, error) when no answer."""
        done = self.run_in(namespace, HTTP_GET, url, str(timeout), timeout=timeout + 10)
        assert done.returncode == 0, done.stderr
        status, _, body = done.stdout.partition("\n")
        return int(status), body


# Run inside a namespace by Testbed.probe: prints open/refused/timeout/unreachable.
PROBE = """
import errno, socket, sys
host, port, proto, timeout = sys.argv[1], int(sys.argv[2]), sys.argv[3], float(sys.argv[4])
kind = socket.SOCK_DGRAM if proto == "udp" else socket.SOCK_STREAM
s = socket.socket(socket.AF_INET, kind)
s.settimeout(timeout)
try:
    s.connect((host, port))
    if proto == "udp":
        s.send(b"probe")
        s.recv(1)
    print("open")
except ConnectionRefusedError:
    print("refused")
except (socket.timeout, TimeoutError):
    print("timeout")
except OSError as exc:
    print("unreachable" if exc.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH) else
          f"error {exc.errno}")
"""

# Run inside a namespace by Testbed.http_in: prints the status, a newline, the body.
HTTP_GET = """
import sys, urllib.error, urllib.request
try:
    with urllib.request.urlopen(sys.argv[1], timeout=float(sys.argv[2])) as r:
        print(r.status); print(r.read().decode(errors="replace"), end="")
except urllib.error.HTTPError as exc:
    print(exc.code); print(exc.read().decode(errors="replace"), end="")
except OSError as exc:
    print(0); print(exc, end="")
"""
