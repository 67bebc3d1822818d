"""Fixtures for the haproxy.cfg renderer: a real `haproxy -c` and a load balancer that uses
every feature at once.

``haproxy`` (session scope, so hypothesis can use it) owns a directory laid out like an
amphora's: it writes the PEM files and crt-lists a rendered config names (self-signed EC
certificates and a CRL made with `cryptography`), then runs ``haproxy -c`` on the config.
"""

from __future__ import annotations

import datetime as dt
import itertools
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from statera.domain.model import (
    AdditionalVip,
    HealthMonitor,
    L7Policy,
    L7Rule,
    Listener,
    LoadBalancer,
    Member,
    Pool,
    SessionPersistence,
    Vip,
)
from statera.render.haproxy import crt_list_path, render_crt_list, render_haproxy_config
from statera.render.options import RenderOptions, cert_file

HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"


def uid(n: int, seed: int = 0) -> str:
    """A readable, valid object id; ``seed`` keeps several load balancers' ids apart."""
    return f"{seed:08x}-0000-4000-8000-{n:012d}"


LB_ID = uid(1)
PROJECT = "3f1a9c0e5b7d4e2f8a6c1b0d9e8f7a6b"


def _pem_material() -> tuple[bytes, bytes]:
    """(certificate + key bundle usable as crt and as CA, CRL signed by it)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "statera-test.example")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("statera-test.example")]), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    crl = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(name)
        .last_update(now - dt.timedelta(days=1))
        .next_update(now + dt.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    bundle = cert.public_bytes(serialization.Encoding.PEM) + key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return bundle, crl.public_bytes(serialization.Encoding.PEM)


@dataclass
class Checked:
    config: str
    returncode: int
    output: str

    @property
    def warnings(self) -> list[str]:
        return [line for line in self.output.splitlines() if "[WARNING]" in line]


@dataclass
class Haproxy:
    """Render-and-check against the real binary, in an amphora-like directory."""

    root: Path
    bundle: bytes
    crl: bytes
    opts: RenderOptions
    _counter: Iterator[int] = field(default_factory=itertools.count)

    def options(self, **changes: object) -> RenderOptions:
        return replace(self.opts, **changes)  # type: ignore[arg-type]

    def write_materials(self, lb: LoadBalancer, opts: RenderOptions) -> None:
        cert_dir = Path(opts.cert_dir)
        if cert_dir.is_relative_to(self.root):
            cert_dir.mkdir(parents=True, exist_ok=True)
        crls = {li.client_crl_container_ref for li in lb.listeners}
        crls |= {p.crl_container_id for p in lb.pools}
        refs: set[str | None] = set()
        for li in lb.listeners:
            refs |= {li.default_tls_container_ref, li.client_ca_tls_container_ref}
            refs |= set(li.sni_container_refs)
        for p in lb.pools:
            refs |= {p.tls_certificate_id, p.ca_tls_certificate_id}
        for ref in (refs | crls) - {None}:
            assert ref is not None
            target = cert_dir / cert_file(ref)
            if not target.exists():
                target.write_bytes(self.crl if ref in crls else self.bundle)
        for li in lb.listeners:
            try:
                text = render_crt_list(li, opts)
            except Exception:
                continue  # not a TLS listener (or the renderer refuses it anyway)
            Path(crt_list_path(li, opts)).write_text(text)

    def check_text(self, config: str, *, strict: bool = True) -> Checked:
        path = self.root / f"haproxy-{next(self._counter)}.cfg"
        path.write_text(config)
        args = [HAPROXY, "-c", "-f", str(path)]
        if strict:
            args.insert(2, "-dW")  # zero-warning: any warning fails the check
        done = subprocess.run(args, capture_output=True, text=True, timeout=30)
        path.unlink()
        return Checked(config, done.returncode, done.stdout + done.stderr)

    def check(
        self, lb: LoadBalancer, opts: RenderOptions | None = None, *, strict: bool = True
    ) -> Checked:
        """Render ``lb``, write what the agent would write next to it, run haproxy -c."""
        opts = opts or self.opts
        config = render_haproxy_config(lb, opts)
        self.write_materials(lb, opts)
        return self.check_text(config, strict=strict)

    def valid(self, lb: LoadBalancer, opts: RenderOptions | None = None) -> str:
        checked = self.check(lb, opts)
        assert checked.returncode == 0, checked.output + "\n" + _numbered(checked.config)
        return checked.config

    def check_many(self, configs: list[str], *, strict: bool = True) -> list[list[str]]:
        """``haproxy -c`` over several rendered configs laid end to end, to keep many small
        checks fast. Their object ids must differ, and they must have no peers or internal
        exporter sections. Configs with the same ``global`` section share one run (HAProxy
        refuses some global settings twice, so each run keeps only the first one). Returns,
        per config, the diagnostics HAProxy attributed to its lines; a diagnostic attributed
        to no line goes to every config of its run."""
        found: list[list[str]] = [[] for _ in configs]
        runs: dict[str, list[int]] = {}
        for index, config in enumerate(configs):
            settings = [li for li in _split_global(config)[0].splitlines() if li[:1] != "#"]
            runs.setdefault("\n".join(settings), []).append(index)
        for members in runs.values():
            parts = [configs[members[0]]] + [_split_global(configs[i])[1] for i in members[1:]]
            starts, lines = [], 0
            for part in parts:
                starts.append(lines + 1)
                lines += part.count("\n")
            checked = self.check_text("".join(parts), strict=strict)
            for message in checked.output.splitlines():
                if not _is_diagnostic(message):
                    continue
                at = re.search(r":(\d+)\]", message)
                if at is None:
                    for i in members:
                        found[i].append(message)
                    continue
                line = int(at.group(1))
                owner = max(k for k, start in enumerate(starts) if start <= line)
                found[members[owner]].append(message)
            if checked.returncode != 0 and not any(found[i] for i in members):
                for i in members:
                    found[i].append(checked.output)
        return found


def _is_diagnostic(message: str) -> bool:
    if "[WARNING]" not in message and "[ALERT]" not in message:
        return False
    summaries = ("Fatal errors found", "Error(s) found", "'zero-warning' is set")
    return not any(s in message for s in summaries)


def _split_global(config: str) -> tuple[str, str]:
    """(everything up to the end of the global section, the rest)."""
    at = config.index("\ndefaults\n")
    at = config.rindex("\n", 0, at)  # keep the blank line before defaults with the rest
    return config[: at + 1], config[at + 1 :]


def _numbered(text: str) -> str:
    return "\n".join(f"{n:4} {line}" for n, line in enumerate(text.splitlines(), 1))


@pytest.fixture(scope="session")
def haproxy(tmp_path_factory: pytest.TempPathFactory) -> Haproxy:
    if not os.path.exists(HAPROXY):
        if os.environ.get("CI"):
            pytest.fail(f"haproxy is required in CI but {HAPROXY} does not exist")
        pytest.skip(f"haproxy is not installed ({HAPROXY}); the renderer is checked with it")
    root = tmp_path_factory.mktemp("amphora")
    (root / "certs").mkdir()
    state = root / "servers-state"
    state.write_text("1\n")  # an empty server-state dump: version line only
    bundle, crl = _pem_material()
    opts = RenderOptions(
        base_path=str(root),
        stats_socket=str(root / "haproxy.sock"),
        server_state_file=str(state),
        cert_dir=str(root / "certs"),
        log_target="/dev/log",
    )
    return Haproxy(root=root, bundle=bundle, crl=crl, opts=opts)


# ---- a load balancer using every feature ----------------------------------------------------


def member(n: int, address: str, *, seed: int = 0, **kw: object) -> Member:
    port = kw.pop("port", 80)
    return Member(id=uid(n, seed), address=address, protocol_port=port, **kw)  # type: ignore[arg-type]


def http_monitor(n: int, *, seed: int = 0, **kw: object) -> HealthMonitor:
    values: dict[str, object] = dict(
        type="HTTP",
        delay=5,
        timeout=3,
        max_retries=2,
        max_retries_down=3,
        http_method="GET",
        url_path="/health",
        expected_codes="200-204,301",
        http_version=1.1,
        domain_name="app.example.com",
    )
    values.update(kw)
    return HealthMonitor(id=uid(n, seed), **values)  # type: ignore[arg-type]


def full_lb(seed: int = 0) -> LoadBalancer:
    """Every listener protocol, pool protocol, algorithm, persistence type, monitor type,
    L7 rule type and compare type, TLS both ways and every header — in one load balancer.
    Ids: LB 1, listeners 1xx, pools 2xx, members 3xx, monitors 4xx, policies 5xx, rules 6xx."""
    web = Pool(
        id=uid(201, seed),
        protocol="HTTP",
        lb_algorithm="ROUND_ROBIN",
        session_persistence=SessionPersistence(type="HTTP_COOKIE"),
        health_monitor=http_monitor(401, seed=seed),
        members=[
            member(
                301, seed=seed, address="10.0.1.10", monitor_address="10.0.9.10", monitor_port=8080
            ),
            member(302, seed=seed, address="2001:db8::10", weight=0),
            member(303, seed=seed, address="10.0.1.12", backup=True),
            member(304, seed=seed, address="10.0.1.13", enabled=False),
        ],
    )
    api = Pool(
        id=uid(202, seed),
        protocol="HTTP",
        lb_algorithm="LEAST_CONNECTIONS",
        session_persistence=SessionPersistence(type="APP_COOKIE", cookie_name="JSESSIONID"),
        health_monitor=http_monitor(
            402,
            seed=seed,
            type="HTTPS",
            http_method="HEAD",
            http_version=1.0,
            domain_name=None,
            expected_codes="200,202",
        ),
        members=[member(305, seed=seed, address="10.0.2.10", port=8443)],
        tls_enabled=True,
        tls_certificate_id="https://barbican.example/v1/containers/pool-client",
        ca_tls_certificate_id="https://barbican.example/v1/containers/pool-ca",
        crl_container_id="https://barbican.example/v1/containers/pool-crl",
        tls_ciphers="ECDHE-ECDSA-AES128-GCM-SHA256:TLS_AES_128_GCM_SHA256",
        tls_versions=["TLSv1.2", "TLSv1.3"],
        alpn_protocols=["h2", "http/1.1"],
    )
    proxied = Pool(
        id=uid(203, seed),
        protocol="PROXY",
        lb_algorithm="SOURCE_IP",
        session_persistence=SessionPersistence(type="SOURCE_IP"),
        health_monitor=HealthMonitor(
            id=uid(403, seed), type="TCP", delay=10, timeout=5, max_retries=3, max_retries_down=3
        ),
        members=[member(306, seed=seed, address="10.0.3.10")],
    )
    proxied_v2 = Pool(
        id=uid(204, seed),
        protocol="PROXYV2",
        lb_algorithm="SOURCE_IP_PORT",
        health_monitor=HealthMonitor(
            id=uid(404, seed), type="PING", delay=0, timeout=1, max_retries=1, max_retries_down=1
        ),
        members=[member(307, seed=seed, address="10.0.4.10")],
    )
    passthrough = Pool(
        id=uid(205, seed),
        protocol="HTTPS",
        lb_algorithm="SOURCE_IP_PORT",
        health_monitor=HealthMonitor(
            id=uid(405, seed),
            type="TLS-HELLO",
            delay=2,
            timeout=1,
            max_retries=2,
            max_retries_down=2,
        ),
        members=[member(308, seed=seed, address="10.0.5.10", port=443)],
    )
    plain_tcp = Pool(
        id=uid(206, seed),
        protocol="TCP",
        lb_algorithm="ROUND_ROBIN",
        enabled=False,
        health_monitor=HealthMonitor(
            id=uid(406, seed),
            type="TCP",
            delay=2,
            timeout=1,
            max_retries=2,
            max_retries_down=2,
            enabled=False,
        ),
        members=[member(309, seed=seed, address="10.0.6.10", port=5432)],
    )

    def rule(
        n: int, rtype: str, compare: str, value: str, key: str | None = None, invert: bool = False
    ) -> L7Rule:
        return L7Rule(
            id=uid(n, seed), type=rtype, compare_type=compare, value=value, key=key, invert=invert
        )

    policies = [
        L7Policy(
            id=uid(501, seed),
            action="REDIRECT_TO_POOL",
            position=1,
            redirect_pool_id=uid(202, seed),
            rules=[
                rule(601, "PATH", "STARTS_WITH", "/api"),
                rule(602, "HOST_NAME", "EQUAL_TO", "api.example.com"),
            ],
        ),
        L7Policy(
            id=uid(502, seed),
            action="REJECT",
            position=2,
            rules=[
                rule(603, "HEADER", "CONTAINS", "curl", key="User-Agent"),
                rule(604, "COOKIE", "EQUAL_TO", "1", key="banned", invert=True),
            ],
        ),
        L7Policy(
            id=uid(503, seed),
            action="REDIRECT_TO_URL",
            position=3,
            redirect_url="https://www.example.com/moved?from=%2Fold",
            redirect_http_code=301,
            rules=[
                rule(605, "FILE_TYPE", "EQUAL_TO", "php"),
                rule(606, "PATH", "ENDS_WITH", "/old"),
            ],
        ),
        L7Policy(
            id=uid(504, seed),
            action="REDIRECT_PREFIX",
            position=4,
            redirect_prefix="https://static.example.com",
            redirect_http_code=308,
            rules=[
                rule(607, "FILE_TYPE", "REGEX", r"\.(png|jpe?g)$"),
                rule(608, "PATH", "REGEX", r"^/img/[a-z]+"),
            ],
        ),
        L7Policy(
            id=uid(505, seed),
            action="REJECT",
            position=5,
            rules=[
                rule(609, "SSL_CONN_HAS_CERT", "EQUAL_TO", "True", invert=True),
                rule(610, "SSL_VERIFY_RESULT", "EQUAL_TO", "0", invert=True),
                rule(611, "SSL_DN_FIELD", "ENDS_WITH", ".example.com", key="CN"),
            ],
        ),
        L7Policy(
            id=uid(506, seed),
            action="REDIRECT_TO_POOL",
            position=6,
            redirect_pool_id=uid(201, seed),
            rules=[rule(612, "HEADER", "REGEX", "^v[0-9]+$", key="X-Version")],
        ),
        # never rendered: disabled, and without enabled rules
        L7Policy(
            id=uid(507, seed),
            action="REJECT",
            position=7,
            enabled=False,
            rules=[rule(613, "PATH", "EQUAL_TO", "/x")],
        ),
        L7Policy(
            id=uid(508, seed),
            action="REJECT",
            position=8,
            rules=[
                L7Rule(
                    id=uid(614, seed),
                    type="PATH",
                    compare_type="EQUAL_TO",
                    value="/y",
                    enabled=False,
                )
            ],
        ),
    ]
    headers = {
        h: "true"
        for h in (
            "X-Forwarded-For",
            "X-Forwarded-Port",
            "X-Forwarded-Proto",
            "X-Real-IP",
            "X-Client-IP",
            "X-Forwarded-IP",
            "X-SSL-Client-Verify",
            "X-SSL-Client-Has-Cert",
            "X-SSL-Client-DN",
            "X-SSL-Client-CN",
            "X-SSL-Issuer",
            "X-SSL-Client-SHA1",
            "X-SSL-Client-Not-Before",
            "X-SSL-Client-Not-After",
        )
    }
    listeners = [
        Listener(
            id=uid(101, seed),
            protocol="HTTP",
            protocol_port=80,
            default_pool_id=uid(201, seed),
            connection_limit=1000,
            insert_headers={"X-Forwarded-For": "True", "X-Forwarded-Proto": "true"},
            allowed_cidrs=["10.0.0.0/8", "2001:db8::/32", "192.0.2.7"],
            timeout_client_data=30000,
            timeout_member_connect=3000,
            timeout_member_data=40000,
            timeout_tcp_inspect=500,
            l7policies=[p for p in policies if p.position in (1, 6)],
        ),
        Listener(
            id=uid(102, seed),
            protocol="TERMINATED_HTTPS",
            protocol_port=443,
            default_pool_id=uid(201, seed),
            insert_headers=headers,
            default_tls_container_ref="https://barbican.example/v1/containers/default",
            sni_container_refs=[
                "https://barbican.example/v1/containers/sni-a",
                "https://barbican.example/v1/containers/sni-b",
            ],
            client_ca_tls_container_ref="https://barbican.example/v1/containers/client-ca",
            client_authentication="OPTIONAL",
            client_crl_container_ref="https://barbican.example/v1/containers/client-crl",
            tls_ciphers="ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
            "TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256",
            tls_versions=["TLSv1.2", "TLSv1.3"],
            alpn_protocols=["h2", "http/1.1"],
            hsts_max_age=31536000,
            hsts_include_subdomains=True,
            hsts_preload=True,
            l7policies=policies,
        ),
        Listener(
            id=uid(103, seed),
            protocol="TCP",
            protocol_port=5000,
            default_pool_id=uid(203, seed),
            timeout_tcp_inspect=100,
            connection_limit=2_000_000,  # above HAProxy's cap: rendered as the cap
        ),
        Listener(
            id=uid(104, seed),
            protocol="HTTPS",
            protocol_port=8443,
            default_pool_id=uid(205, seed),
            connection_limit=-1,
        ),
        Listener(
            id=uid(105, seed), protocol="HTTP", protocol_port=8080, default_pool_id=uid(204, seed)
        ),
        Listener(
            id=uid(106, seed), protocol="TCP", protocol_port=5432, default_pool_id=uid(206, seed)
        ),
        Listener(
            id=uid(107, seed),
            protocol="PROMETHEUS",
            protocol_port=9100,
            allowed_cidrs=["10.0.0.0/8"],
        ),
        Listener(id=uid(108, seed), protocol="HTTP", protocol_port=81),  # no default pool: 503
        Listener(id=uid(109, seed), protocol="TCP", protocol_port=82),  # no default pool: closed
        Listener(
            id=uid(110, seed),
            protocol="HTTP",
            protocol_port=83,
            enabled=False,
            default_pool_id=uid(201, seed),
        ),
        Listener(
            id=uid(111, seed), protocol="UDP", protocol_port=53
        ),  # keepalived's, not HAProxy's
    ]
    return LoadBalancer(
        id=uid(1, seed),
        project_id=PROJECT,
        topology="ACTIVE_STANDBY",
        vip=Vip(ip_address="203.0.113.10", subnet_id=None, network_id=None, port_id=None),
        additional_vips=[AdditionalVip(subnet_id="s6", ip_address="2001:db8:ffff::10")],
        listeners=listeners,
        pools=[web, api, proxied, proxied_v2, passthrough, plain_tcp],
    )


def simple_lb(listener: Listener | None = None, pool: Pool | None = None) -> LoadBalancer:
    """One listener (HTTP :80 by default) with one pool of one member."""
    pool = pool or Pool(
        id=uid(201), protocol="HTTP", lb_algorithm="ROUND_ROBIN", members=[member(301, "10.0.1.10")]
    )
    listener = listener or Listener(id=uid(101), protocol="HTTP", protocol_port=80)
    if listener.default_pool_id is None and listener.protocol != "PROMETHEUS":
        listener.default_pool_id = pool.id
    return LoadBalancer(
        id=LB_ID,
        project_id=PROJECT,
        topology="SINGLE",
        vip=Vip(ip_address="203.0.113.10", subnet_id=None, network_id=None, port_id=None),
        listeners=[listener],
        pools=[pool],
    )


# ---- reading a config back the way HAProxy 2.6 does -----------------------------------------


class Unsafe(AssertionError):
    """The rendered text would not be read back as written."""


# One piece of a config line as HAProxy's parse_line sees it: blanks, a comment, a double-
# or single-quoted string, a backslash escape, or plain characters.
_PIECE = re.compile(
    r"(?P<blank>[ \t\n\v\f\r]+)|(?P<comment>#.*)"
    r'|"(?P<dq>(?:[^"\\]|\\.)*)"|\'(?P<sq>[^\']*)\'|\\(?P<esc>x[0-9A-Fa-f]{2}|.?)'
    r"|(?P<plain>[^ \t\n\v\f\r\"'\\#]+)",
    re.S,
)
_ESCAPES = {" ": " ", "\\": "\\", "t": "\t", "n": "\n", "r": "\r", "#": "#", '"': '"', "'": "'"}
_FORBIDDEN = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029]")


def _unescape(escape: str, in_dquote: bool) -> str:
    if escape in _ESCAPES:
        return _ESCAPES[escape]
    if escape == "$" and in_dquote:
        return "$"
    if escape.startswith("x") and len(escape) == 3:
        return chr(int(escape[1:], 16))
    return "\\" + escape  # not an escape sequence: HAProxy keeps the backslash


def haproxy_words(line: str) -> list[str]:
    """The words HAProxy's ``parse_line`` makes of one config line (quotes, backslash
    escapes, comments). An unescaped ``$`` inside double quotes would expand an environment
    variable: that, or an unterminated quote, raises Unsafe."""
    words: list[str] = []
    word: list[str] | None = None
    at = 0
    while at < len(line):
        piece = _PIECE.match(line, at)
        if piece is None:
            raise Unsafe(f"unterminated quote in {line!r}")
        at = piece.end()
        kind = piece.lastgroup
        if kind == "comment":
            break
        if kind == "blank":
            if word is not None:
                words.append("".join(word))
                word = None
            continue
        word = [] if word is None else word
        if kind == "dq":
            inner = piece.group("dq")
            if re.search(r"(?<!\\)(?:\\\\)*\$", inner):
                raise Unsafe(f"an environment variable would be expanded in {line!r}")
            word.append(re.sub(r"\\(x[0-9A-Fa-f]{2}|.)", lambda m: _unescape(m[1], True), inner))
        elif kind == "esc":
            word.append(_unescape(piece.group("esc"), False))
        else:
            word.append(piece.group(kind or "plain"))
    if word is not None:
        words.append("".join(word))
    return words


def parse_config(text: str) -> list[tuple[str, list[str]]]:
    """(section keyword, words) of every directive line, read as HAProxy reads them."""
    bad = _FORBIDDEN.search(text)
    if bad:
        raise Unsafe(f"control character U+{ord(bad.group()):04X} in the rendered file")
    section = ""
    parsed = []
    for line in text.split("\n"):
        words = haproxy_words(line)
        if not words:
            continue
        if not line[0].isspace():
            section = words[0]
        if any(w == "" for w in words):
            raise Unsafe(f"an empty word in {line!r}")
        parsed.append((section, words))
    return parsed


def skeleton(
    text: str, parsed: list[tuple[str, list[str]]] | None = None
) -> tuple[int, list[tuple[str, str, int]]]:
    """Line count and, per directive, (section, keyword, number of words)."""
    parsed = parse_config(text) if parsed is None else parsed
    return text.count("\n"), [(s, w[0], len(w)) for s, w in parsed]
