"""The haproxy.cfg renderer: the directives each feature produces, and `haproxy -c` (zero
warnings) on a load balancer using every feature and on every protocol/algorithm/monitor/L7
combination. The combinations are rendered into a few large configs, one listener per
combination, and HAProxy's diagnostics are attributed back to the listener by line number."""

from __future__ import annotations

import copy
import itertools
import re
from dataclasses import dataclass

import pytest

from statera.domain.enums import LISTENER_POOL_PROTOCOLS, L7RuleCompareType, L7RuleType
from statera.domain.model import (
    AdditionalVip,
    L7Policy,
    L7Rule,
    Listener,
    LoadBalancer,
    Pool,
    SessionPersistence,
    Vip,
)
from statera.render import haproxy as renderer
from statera.render.escape import Cfg, RenderError
from statera.render.haproxy import render_crt_list, render_haproxy_config
from statera.render.options import RenderOptions, cert_file
from tests.unit.render.conftest import (
    LB_ID,
    PROJECT,
    Checked,
    Haproxy,
    full_lb,
    http_monitor,
    member,
    simple_lb,
    uid,
)

L = {n: uid(n) for n in range(101, 112)}  # the full LB's listener ids
P = {n: uid(n) for n in range(201, 207)}  # and pools


def section(config: str, header: str) -> list[str]:
    """The directive lines (words joined by one space) of the section ``header``."""
    out: list[str] = []
    inside = False
    for line in config.splitlines():
        if line and not line[0].isspace():
            inside = line.strip() == header
            continue
        if inside and line.strip():
            out.append(" ".join(line.split()))
    if not inside and not out:
        assert header in config, f"no section {header!r}"
    return out


def headers(config: str) -> list[str]:
    return [
        line for line in config.splitlines() if line and not line[0].isspace() and line[0] != "#"
    ]


def frontend(config: str, listener_id: str) -> list[str]:
    return section(config, f"frontend {listener_id}")


def backend(config: str, pool_id: str, listener_id: str) -> list[str]:
    return section(config, f"backend {pool_id}:{listener_id}")


def has_run(lines: list[str], run: list[str]) -> bool:
    """Whether ``run`` appears in ``lines`` as consecutive lines."""
    return any(lines[i : i + len(run)] == run for i in range(len(lines) - len(run) + 1))


def server_line(lines: list[str], member_id: str) -> str:
    return next(line for line in lines if line.startswith(f"server {member_id} "))


@pytest.fixture
def opts(haproxy: Haproxy) -> RenderOptions:
    return haproxy.opts


# ---- the whole load balancer -----------------------------------------------------------------


def test_every_feature_at_once_passes_haproxy_check(haproxy: Haproxy) -> None:
    opts = haproxy.options(
        peers=(("amp-a", "192.0.2.1", 1025), ("amp-b", "192.0.2.2", 1025)), local_peer="amp-a"
    )
    config = haproxy.valid(full_lb(), opts)
    assert [h.split()[0] for h in headers(config)].count("frontend") == 10  # 9 + exporter
    assert [h.split()[0] for h in headers(config)].count("backend") == 9  # 8 + metrics proxy
    assert [h.split()[0] for h in headers(config)].count("program") == 1


def test_every_feature_without_logging_or_peers_passes_haproxy_check(haproxy: Haproxy) -> None:
    config = haproxy.valid(full_lb(), haproxy.options(log_target=None, prometheus_port=0))
    assert "log-format" not in config
    assert "statera-prometheus-internal" not in config


def test_rendering_is_pure_and_repeatable(opts: RenderOptions) -> None:
    lb = full_lb()
    before = copy.deepcopy(lb)
    assert render_haproxy_config(lb, opts) == render_haproxy_config(lb, opts)
    assert lb == before


def test_a_load_balancer_without_listeners_is_still_a_valid_config(haproxy: Haproxy) -> None:
    lb = LoadBalancer(id=LB_ID, project_id=PROJECT, topology="SINGLE", vip=None)
    config = haproxy.valid(lb)
    assert [h.split()[0] for h in headers(config)] == ["global", "defaults"]


def test_listeners_need_a_vip_address(opts: RenderOptions) -> None:
    lb = simple_lb()
    lb.vip = Vip(ip_address=None, subnet_id=None, network_id=None, port_id=None)
    with pytest.raises(RenderError, match=LB_ID):
        render_haproxy_config(lb, opts)


def test_names_are_never_rendered(opts: RenderOptions) -> None:
    lb = full_lb()
    lb.name = "NAME-OF-LB"
    named: list[Listener | Pool] = [*lb.listeners, *lb.pools]
    for i, obj in enumerate(named):
        obj.name = f"NAME-{i}"
    assert "NAME-" not in render_haproxy_config(lb, opts)


# ---- global, defaults, peers -----------------------------------------------------------------


def test_global_section_is_master_worker_friendly(opts: RenderOptions) -> None:
    config = render_haproxy_config(full_lb(), opts)
    lines = section(config, "global")
    assert f"stats socket {opts.stats_socket} mode 600 level admin expose-fd listeners" in lines
    assert f"server-state-file {opts.server_state_file}" in lines
    assert "hard-stop-after 60s" in lines
    assert "nbthread 1" in lines
    # listener 103 asks for 2,000,000: it and the sum are capped at HAProxy's 1,000,000
    assert "maxconn 1000000" in lines
    assert "maxconn 1000000" in frontend(config, L[103])
    assert not any(line.startswith(("daemon", "external-check", "insecure-fork")) for line in lines)
    assert "load-server-state-from-file global" in section(config, "defaults")


def test_global_maxconn_is_the_sum_of_listener_limits(opts: RenderOptions) -> None:
    lb = simple_lb(Listener(id=L[101], protocol="HTTP", protocol_port=80, connection_limit=1000))
    lb.listeners.append(
        Listener(id=L[102], protocol="HTTP", protocol_port=81, default_pool_id=P[201])
    )
    assert "maxconn 51000" in section(render_haproxy_config(lb, opts), "global")


def test_global_maxconn_is_capped(opts: RenderOptions) -> None:
    lb = simple_lb()
    lb.listeners = [
        Listener(id=uid(100 + i), protocol="TCP", protocol_port=1000 + i, default_pool_id=P[201])
        for i in range(30)
    ]
    lb.pools[0].protocol = "TCP"
    assert "maxconn 1000000" in section(render_haproxy_config(lb, opts), "global")


def test_operator_settings_reach_global(opts: RenderOptions) -> None:
    custom = RenderOptions(
        base_path=opts.base_path,
        stats_socket=opts.stats_socket,
        server_state_file=opts.server_state_file,
        cert_dir=opts.cert_dir,
        hard_stop_after="5m",
        nbthread=4,
        default_connection_limit=200,
    )
    lines = section(render_haproxy_config(simple_lb(), custom), "global")
    assert {"hard-stop-after 5m", "nbthread 4", "maxconn 200"} <= set(lines)


@pytest.mark.parametrize(
    "change",
    [
        {"stats_socket": "relative/path"},
        {"stats_socket": "/var/lib/x y"},
        {"cert_dir": "/var/lib/../etc"},
        {"server_state_file": '/tmp/"state'},
        {"hard_stop_after": "60 s"},
        {"nbthread": 0},
        {"log_target": "/dev/log local7"},
        {"peers": (("amp a", "192.0.2.1", 1025),), "local_peer": "amp a"},
        {"peers": (("amp-a", "192.0.2.300", 1025),)},
        {"peers": (("amp-a", "192.0.2.1", 1025),), "local_peer": "amp-b"},
    ],
)
def test_bad_operator_settings_are_refused(opts: RenderOptions, change: dict) -> None:
    from dataclasses import replace

    with pytest.raises(RenderError):
        render_haproxy_config(simple_lb(), replace(opts, **change))


def test_logging(opts: RenderOptions) -> None:
    config = render_haproxy_config(full_lb(), opts)
    assert {"log /dev/log local0", "log /dev/log local1 notice"} <= set(section(config, "global"))
    assert "log global" in section(config, "defaults")
    expected = (
        f'log-format "{PROJECT} {LB_ID} %f %ci %cp %t %{{+Q}}r %ST %B %U %[ssl_c_verify] '
        f'%{{+Q}}[ssl_c_s_dn] %b %s %Tt %tsc"'
    )
    assert expected in frontend(config, L[101])


def test_no_log_target_means_no_log_lines(opts: RenderOptions) -> None:
    from dataclasses import replace

    config = render_haproxy_config(full_lb(), replace(opts, log_target=None))
    assert not re.search(r"^\s*(log|log-format)\s", config, re.M)


def test_connection_logging_off(opts: RenderOptions) -> None:
    from dataclasses import replace

    config = render_haproxy_config(full_lb(), replace(opts, connection_logging=False))
    assert "no log" in section(config, "defaults")
    assert "log-format" not in config
    assert "log /dev/log local1 notice" in section(config, "global")  # admin log stays


def test_project_id_cannot_open_a_sample_expression(opts: RenderOptions) -> None:
    lb = simple_lb()
    lb.project_id = 'p%[src]"x'
    line = next(
        li for li in frontend(render_haproxy_config(lb, opts), L[101]) if "log-format" in li
    )
    assert line.startswith('log-format "p%%[src]\\"x ')


def test_tcp_frontends_log_dashes_for_http_only_variables(opts: RenderOptions) -> None:
    from dataclasses import replace

    fmt = "{lb_id} %r %{+Q}r %HM %HU %%r %ST %[src]"
    config = render_haproxy_config(full_lb(), replace(opts, user_log_format=fmt))
    assert f'log-format "{LB_ID} - - - - %%r %ST %[src]"' in frontend(config, L[103])
    assert f'log-format "{LB_ID} %r %{{+Q}}r %HM %HU %%r %ST %[src]"' in frontend(config, L[101])


def test_peers_section_only_for_an_active_standby_pair(opts: RenderOptions) -> None:
    from dataclasses import replace

    single = render_haproxy_config(full_lb(), opts)
    assert "peers" not in [h.split()[0] for h in headers(single)]
    assert "peers" not in " ".join(backend(single, P[203], L[103]))
    pair = replace(
        opts,
        peers=(("amp-a", "192.0.2.1", 1025), ("amp-b", "2001:db8::2", 1025)),
        local_peer="amp-b",
    )
    config = render_haproxy_config(full_lb(), pair)
    assert section(config, "peers statera_peers") == [
        "peer amp-a 192.0.2.1:1025",
        "peer amp-b [2001:db8::2]:1025",
    ]
    assert "localpeer amp-b" in section(config, "global")
    assert "stick-table type ipv6 size 10k peers statera_peers" in backend(config, P[203], L[103])
    assert "stick-table type string len 64 size 10k peers statera_peers" in backend(
        config, P[202], L[101]
    )


# ---- listeners -------------------------------------------------------------------------------


def test_one_frontend_per_enabled_haproxy_listener(opts: RenderOptions) -> None:
    config = render_haproxy_config(full_lb(), opts)
    fronts = [h.split()[1] for h in headers(config) if h.startswith("frontend")]
    assert fronts == [
        "statera-prometheus-internal",
        *(L[n] for n in (101, 102, 103, 104, 105, 106, 107, 108, 109)),
    ]  # 110 is disabled, 111 is UDP (keepalived)


def test_one_backend_per_pool_and_listener(opts: RenderOptions) -> None:
    config = render_haproxy_config(full_lb(), opts)
    backs = [h.split()[1] for h in headers(config) if h.startswith("backend")]
    assert backs == [
        "statera-prometheus-proxy",  # L[107] is a PROMETHEUS listener
        f"{P[201]}:{L[101]}",
        f"{P[202]}:{L[101]}",  # default pool, then L7-routed pools
        f"{P[201]}:{L[102]}",
        f"{P[202]}:{L[102]}",
        f"{P[203]}:{L[103]}",
        f"{P[205]}:{L[104]}",
        f"{P[204]}:{L[105]}",
        f"{P[206]}:{L[106]}",
    ]


def test_listener_modes_and_binds(opts: RenderOptions) -> None:
    config = render_haproxy_config(full_lb(), opts)
    modes = {n: frontend(config, L[n])[0] for n in (101, 102, 103, 104, 107)}
    assert modes == {
        101: "mode http",
        102: "mode http",
        103: "mode tcp",
        104: "mode tcp",
        107: "mode http",
    }
    assert frontend(config, L[103])[2:4] == [
        "bind 203.0.113.10:5000",
        "bind [2001:db8:ffff::10]:5000",
    ]


def test_listener_timeouts_and_limits(opts: RenderOptions) -> None:
    config = render_haproxy_config(full_lb(), opts)
    http = frontend(config, L[101])
    assert {"maxconn 1000", "timeout client 30000ms", "tcp-request inspect-delay 500ms"} <= set(
        http
    )
    pool = backend(config, P[201], L[101])
    assert {"fullconn 1000", "timeout connect 3000ms", "timeout server 40000ms"} <= set(pool)
    # None: the deployment's defaults; no inspect delay at 0
    tcp = frontend(config, L[104])
    assert {"maxconn 50000", "timeout client 50000ms"} <= set(tcp)
    assert not any("inspect-delay" in line for line in tcp)
    assert {"fullconn 50000", "timeout connect 5000ms", "timeout server 50000ms"} <= set(
        backend(config, P[205], L[104])
    )
    assert "tcp-request inspect-delay 100ms" in frontend(config, L[103])


def test_zero_timeouts_mean_none_as_upstream(haproxy: Haproxy) -> None:
    lb = simple_lb(
        Listener(
            id=L[101],
            protocol="HTTP",
            protocol_port=80,
            timeout_client_data=0,
            timeout_member_connect=0,
            timeout_member_data=0,
        )
    )
    checked = haproxy.check(lb, strict=False)
    assert checked.returncode == 0, checked.output
    assert "timeout client 0ms" in frontend(checked.config, L[101])
    assert all("missing timeouts" in w for w in checked.warnings)


def test_no_default_pool(opts: RenderOptions) -> None:
    config = render_haproxy_config(full_lb(), opts)
    assert frontend(config, L[108])[-1] == "http-request return status 503"
    assert frontend(config, L[109])[-1] == "tcp-request connection reject"
    lb = full_lb()
    lb.listeners[0].default_pool_id = None
    routed = frontend(render_haproxy_config(lb, opts), L[101])
    i = routed.index("http-request return status 503 unless statera-l7-matched")
    assert routed[i + 1].startswith("use_backend")  # the L7-routed requests still get through
    assert not any(line.startswith("default_backend") for line in routed)


def test_allowed_cidrs(haproxy: Haproxy) -> None:
    listener = Listener(
        id=L[101],
        protocol="HTTP",
        protocol_port=80,
        allowed_cidrs=[
            "10.1.2.3/8",
            "10.0.0.0/8",
            "not-a-cidr",
            "fe80::1%eth0/64",
            "2001:db8::/32 ",
            "192.0.2.1",
        ],
    )
    lines = frontend(haproxy.valid(simple_lb(listener)), L[101])
    assert "acl statera-allowed-source src 10.0.0.0/8 192.0.2.1/32" in lines
    assert "tcp-request connection reject unless statera-allowed-source" in lines


def test_many_allowed_cidrs_are_split_over_lines(haproxy: Haproxy) -> None:
    cidrs = [f"10.{i}.0.0/16" for i in range(70)]
    listener = Listener(id=L[101], protocol="TCP", protocol_port=80, allowed_cidrs=cidrs)
    pool = Pool(id=P[201], protocol="TCP", lb_algorithm="ROUND_ROBIN")
    lines = frontend(haproxy.valid(simple_lb(listener, pool)), L[101])
    acls = [line for line in lines if line.startswith("acl statera-allowed-source")]
    assert len(acls) == 3
    assert sum(len(a.split()) - 3 for a in acls) == 70


def test_allowed_cidrs_with_nothing_valid_are_refused(opts: RenderOptions) -> None:
    listener = Listener(id=L[101], protocol="HTTP", protocol_port=80, allowed_cidrs=["x", ""])
    with pytest.raises(RenderError, match="allowed_cidrs"):
        render_haproxy_config(simple_lb(listener), opts)


# ---- headers ---------------------------------------------------------------------------------


def test_insert_headers_are_fixed_lines(opts: RenderOptions) -> None:
    config = render_haproxy_config(full_lb(), opts)
    http = frontend(config, L[101])
    assert "option forwardfor" in http
    assert "http-request set-header X-Forwarded-Proto http" in http
    assert not any("X-SSL" in line or "X-Forwarded-Port" in line for line in http)
    tls = [line for line in frontend(config, L[102]) if line.startswith("http-request set-header")]
    assert tls == [
        "http-request set-header X-Forwarded-Port %[dst_port]",
        "http-request set-header X-Forwarded-Proto https",
        "http-request set-header X-Forwarded-IP %[src]",
        "http-request set-header X-Client-IP %[src]",
        "http-request set-header X-Real-IP %[src]",
        "http-request set-header X-SSL-Client-Verify %[ssl_c_verify]",
        "http-request set-header X-SSL-Client-Has-Cert %[ssl_c_used]",
        "http-request set-header X-SSL-Client-DN %{+Q}[ssl_c_s_dn]",
        "http-request set-header X-SSL-Client-CN %{+Q}[ssl_c_s_dn(cn)]",
        "http-request set-header X-SSL-Issuer %{+Q}[ssl_c_i_dn]",
        "http-request set-header X-SSL-Client-SHA1 %{+Q}[ssl_c_sha1,hex]",
        "http-request set-header X-SSL-Client-Not-Before %{+Q}[ssl_c_notbefore]",
        "http-request set-header X-SSL-Client-Not-After %{+Q}[ssl_c_notafter]",
    ]


@pytest.mark.parametrize(
    ("value", "inserted"),
    [
        ("true", True),
        ("True", True),
        ("TRUE", True),
        ("false", False),
        ("yes", False),
        (" true", False),
        ("1", False),
    ],
)
def test_insert_header_values_are_booleans(opts: RenderOptions, value: str, inserted: bool) -> None:
    listener = Listener(
        id=L[101],
        protocol="HTTP",
        protocol_port=80,
        insert_headers={"X-Real-IP": value, "X-Not-Supported": "true", "X-SSL-Client-DN": "true"},
    )
    lines = [
        li
        for li in frontend(render_haproxy_config(simple_lb(listener), opts), L[101])
        if "set-header" in li
    ]
    assert lines == (["http-request set-header X-Real-IP %[src]"] if inserted else [])


def test_headers_are_not_inserted_on_tcp_listeners(opts: RenderOptions) -> None:
    listener = Listener(
        id=L[101], protocol="TCP", protocol_port=80, insert_headers={"X-Forwarded-For": "true"}
    )
    pool = Pool(id=P[201], protocol="TCP", lb_algorithm="ROUND_ROBIN")
    lines = frontend(render_haproxy_config(simple_lb(listener, pool), opts), L[101])
    assert not any("forwardfor" in line or "set-header" in line for line in lines)


def test_hsts_only_on_terminated_https(opts: RenderOptions) -> None:
    config = render_haproxy_config(full_lb(), opts)
    assert (
        'http-response set-header Strict-Transport-Security "max-age=31536000; '
        'includeSubDomains; preload"' in frontend(config, L[102])
    )
    lb = full_lb()
    lb.listeners[0].hsts_max_age = 10
    assert "Strict-Transport" not in " ".join(frontend(render_haproxy_config(lb, opts), L[101]))
    lb.listeners[1].hsts_include_subdomains = lb.listeners[1].hsts_preload = False
    lb.listeners[1].hsts_max_age = 0
    assert 'http-response set-header Strict-Transport-Security "max-age=0"' in frontend(
        render_haproxy_config(lb, opts), L[102]
    )


# ---- TLS -------------------------------------------------------------------------------------


def _terminated(**kw: object) -> Listener:
    values: dict[str, object] = dict(
        id=L[102],
        protocol="TERMINATED_HTTPS",
        protocol_port=443,
        default_tls_container_ref="ref-default",
    )
    values.update(kw)
    return Listener(**values)  # type: ignore[arg-type]


def test_terminated_https_bind_line(opts: RenderOptions) -> None:
    config = render_haproxy_config(full_lb(), opts)
    bind = frontend(config, L[102])[2].split()
    ref = "https://barbican.example/v1/containers/"
    assert bind[:5] == [
        "bind",
        "203.0.113.10:443",
        "ssl",
        "crt-list",
        f"{opts.cert_dir}/{L[102]}.crt-list",
    ]
    assert bind[5:] == [
        "ca-file",
        f"{opts.cert_dir}/{cert_file(ref + 'client-ca')}",
        "verify",
        "optional",
        "crl-file",
        f"{opts.cert_dir}/{cert_file(ref + 'client-crl')}",
        "ciphers",
        "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384",
        "ciphersuites",
        "TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256",
        "ssl-min-ver",
        "TLSv1.2",
        "ssl-max-ver",
        "TLSv1.3",
        "alpn",
        "h2,http/1.1",
    ]
    assert frontend(config, L[102])[3].split()[1] == "[2001:db8:ffff::10]:443"


def test_crt_list_has_the_default_certificate_first(opts: RenderOptions) -> None:
    listener = _terminated(sni_container_refs=["ref-sni-b", "ref-default", "ref-sni-a"])
    assert render_crt_list(listener, opts).splitlines() == [
        f"{opts.cert_dir}/{cert_file(r)}" for r in ("ref-default", "ref-sni-b", "ref-sni-a")
    ]
    sni_only = _terminated(default_tls_container_ref=None, sni_container_refs=["ref-sni-a"])
    assert render_crt_list(sni_only, opts) == f"{opts.cert_dir}/{cert_file('ref-sni-a')}\n"
    assert renderer.crt_list_path(listener, opts) == f"{opts.cert_dir}/{L[102]}.crt-list"


def test_terminated_https_needs_a_certificate(opts: RenderOptions) -> None:
    listener = _terminated(default_tls_container_ref=None)
    with pytest.raises(RenderError, match=L[102]):
        render_haproxy_config(simple_lb(listener), opts)
    with pytest.raises(RenderError, match=L[102]):
        render_crt_list(listener, opts)


@pytest.mark.parametrize(
    ("mode", "verify"), [("NONE", "none"), ("OPTIONAL", "optional"), ("MANDATORY", "required")]
)
def test_client_authentication(haproxy: Haproxy, mode: str, verify: str) -> None:
    listener = _terminated(client_ca_tls_container_ref="ref-ca", client_authentication=mode)
    bind = frontend(haproxy.valid(simple_lb(listener)), L[102])[2]
    assert f"ca-file {haproxy.opts.cert_dir}/{cert_file('ref-ca')} verify {verify}" in bind
    assert "crl-file" not in bind


@pytest.mark.parametrize(
    "kw",
    [
        {"client_authentication": "MANDATORY"},
        {"client_authentication": "OPTIONAL"},
        {"client_crl_container_ref": "ref-crl"},
        {"client_authentication": "SOMETIMES", "client_ca_tls_container_ref": "ref-ca"},
    ],
)
def test_client_authentication_needs_a_ca(opts: RenderOptions, kw: dict) -> None:
    with pytest.raises(RenderError, match=L[102]):
        render_haproxy_config(simple_lb(_terminated(**kw)), opts)


@pytest.mark.parametrize(
    ("versions", "span"),
    [
        (["TLSv1.3"], "ssl-min-ver TLSv1.3 ssl-max-ver TLSv1.3"),
        (["TLSv1.3", "TLSv1.2"], "ssl-min-ver TLSv1.2 ssl-max-ver TLSv1.3"),
        (["TLSv1", "TLSv1.2"], "ssl-min-ver TLSv1.0 ssl-max-ver TLSv1.2"),  # hole: the span
        (["SSLv3", "TLSv1.1"], "ssl-min-ver SSLv3 ssl-max-ver TLSv1.1"),
    ],
)
def test_tls_versions(haproxy: Haproxy, versions: list[str], span: str) -> None:
    bind = frontend(haproxy.valid(simple_lb(_terminated(tls_versions=versions))), L[102])[2]
    assert bind.endswith(span)


def test_ciphers_are_split_between_tls12_and_tls13(haproxy: Haproxy) -> None:
    listener = _terminated(
        tls_ciphers="TLS_AES_128_GCM_SHA256:ECDHE-RSA-AES128-GCM-SHA256::"
        "!aNULL:TLS_AES_256_GCM_SHA384"
    )
    bind = frontend(haproxy.valid(simple_lb(listener)), L[102])[2]
    assert bind.endswith(
        "ciphers ECDHE-RSA-AES128-GCM-SHA256:!aNULL "
        "ciphersuites TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384"
    )
    only13 = _terminated(tls_ciphers="TLS_AES_128_GCM_SHA256")
    assert "ciphers " not in frontend(haproxy.valid(simple_lb(only13)), L[102])[2]


@pytest.mark.parametrize(
    "kw",
    [
        {"tls_versions": ["TLSv1.4"]},
        {"tls_versions": ["tlsv1.2"]},
        {"alpn_protocols": ["h3"]},
        {"tls_ciphers": "ECDHE RSA"},
        {"tls_ciphers": "AES128-SHA\nbind :1"},
    ],
)
def test_unknown_tls_settings_are_refused(opts: RenderOptions, kw: dict) -> None:
    with pytest.raises(RenderError, match=L[102]):
        render_haproxy_config(simple_lb(_terminated(**kw)), opts)


def test_re_encryption_towards_members(opts: RenderOptions) -> None:
    config = render_haproxy_config(full_lb(), opts)
    ref = "https://barbican.example/v1/containers/"
    line = server_line(backend(config, P[202], L[101]), uid(305))
    assert line.endswith(
        f"check-ssl ssl verify required ca-file {opts.cert_dir}/{cert_file(ref + 'pool-ca')} "
        f"crl-file {opts.cert_dir}/{cert_file(ref + 'pool-crl')} "
        f"crt {opts.cert_dir}/{cert_file(ref + 'pool-client')} "
        "ciphers ECDHE-ECDSA-AES128-GCM-SHA256 ciphersuites TLS_AES_128_GCM_SHA256 "
        "ssl-min-ver TLSv1.2 ssl-max-ver TLSv1.3 alpn h2,http/1.1"
    )
    pool = Pool(
        id=P[201],
        protocol="HTTP",
        lb_algorithm="ROUND_ROBIN",
        tls_enabled=True,
        members=[member(301, "10.0.1.10")],
    )
    plain = server_line(
        backend(render_haproxy_config(simple_lb(pool=pool), opts), P[201], L[101]), uid(301)
    )
    assert plain.endswith("weight 1 ssl verify none")


def test_prometheus_listener(opts: RenderOptions) -> None:
    from dataclasses import replace

    config = render_haproxy_config(full_lb(), opts)
    assert frontend(config, L[107])[-2:] == [
        "http-request return status 404 unless { path /metrics }",
        "use_backend statera-prometheus-proxy",
    ]
    assert section(config, "frontend statera-prometheus-internal") == [
        "mode http",
        "bind 127.0.0.1:9101",
        "no log",
        "http-request use-service prometheus-exporter",
    ]
    assert section(config, "backend statera-prometheus-proxy") == [
        "mode http",
        "server metrics-proxy 127.0.0.1:9102",
    ]
    # Without the metrics proxy, HAProxy's own exporter answers (haproxy_* names).
    direct = render_haproxy_config(full_lb(), replace(opts, prometheus_proxy_port=0))
    assert frontend(direct, L[107])[-2:] == [
        "http-request use-service prometheus-exporter if { path /metrics }",
        "http-request return status 404",
    ]
    assert "program" not in direct
    assert "statera-prometheus-internal" not in render_haproxy_config(
        full_lb(), replace(opts, prometheus_port=0)
    )
    assert "statera-prometheus-internal" not in render_haproxy_config(simple_lb(), opts)


def test_prometheus_listener_with_tls(haproxy: Haproxy) -> None:
    listener = Listener(
        id=L[107],
        protocol="PROMETHEUS",
        protocol_port=9100,
        default_tls_container_ref="ref-default",
    )
    lines = frontend(haproxy.valid(simple_lb(listener)), L[107])
    assert " ssl crt-list " in lines[2]


# ---- pools -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("algorithm", "lines"),
    [
        ("ROUND_ROBIN", ["balance roundrobin"]),
        ("LEAST_CONNECTIONS", ["balance leastconn"]),
        ("SOURCE_IP", ["balance source"]),
        (
            "SOURCE_IP_PORT",
            [
                "http-request set-var(txn.statera_src_port) src_port",
                "balance hash src,concat(:,txn.statera_src_port)",
            ],
        ),
    ],
)
def test_algorithms(opts: RenderOptions, algorithm: str, lines: list[str]) -> None:
    pool = Pool(id=P[201], protocol="HTTP", lb_algorithm=algorithm)
    assert (
        backend(render_haproxy_config(simple_lb(pool=pool), opts), P[201], L[101])[1:][: len(lines)]
        == lines
    )


def test_source_ip_port_on_tcp_uses_a_content_rule(opts: RenderOptions) -> None:
    config = render_haproxy_config(full_lb(), opts)
    assert backend(config, P[205], L[104])[1] == (
        "tcp-request content set-var(txn.statera_src_port) src_port"
    )


@pytest.mark.parametrize(
    ("listener", "pool", "mode", "proxy"),
    [
        ("HTTP", "HTTP", "http", None),
        ("HTTP", "PROXY", "http", "send-proxy"),
        ("HTTP", "PROXYV2", "http", "send-proxy-v2"),
        ("TERMINATED_HTTPS", "PROXYV2", "http", "send-proxy-v2-ssl-cn"),
        ("TCP", "HTTP", "http", None),
        ("TCP", "HTTPS", "tcp", None),
        ("TCP", "PROXY", "tcp", "send-proxy"),
        ("HTTPS", "TCP", "tcp", None),
        ("HTTPS", "PROXYV2", "tcp", "send-proxy-v2"),
    ],
)
def test_pool_protocols(
    opts: RenderOptions, listener: str, pool: str, mode: str, proxy: str | None
) -> None:
    li = Listener(
        id=L[101],
        protocol=listener,
        protocol_port=80,
        default_tls_container_ref="ref" if listener == "TERMINATED_HTTPS" else None,
    )
    po = Pool(
        id=P[201], protocol=pool, lb_algorithm="ROUND_ROBIN", members=[member(301, "10.0.1.10")]
    )
    lines = backend(render_haproxy_config(simple_lb(li, po), opts), P[201], L[101])
    assert lines[0] == f"mode {mode}"
    assert server_line(lines, uid(301)).endswith(proxy or "weight 1")


@pytest.mark.parametrize(
    ("listener", "pool"), [("HTTP", "TCP"), ("HTTP", "HTTPS"), ("TCP", "UDP"), ("HTTP", "SCTP")]
)
def test_pools_haproxy_cannot_serve_are_refused(
    opts: RenderOptions, listener: str, pool: str
) -> None:
    po = Pool(id=P[201], protocol=pool, lb_algorithm="ROUND_ROBIN")
    with pytest.raises(RenderError, match=P[201]):
        render_haproxy_config(
            simple_lb(Listener(id=L[101], protocol=listener, protocol_port=80), po), opts
        )


def test_session_persistence(opts: RenderOptions) -> None:
    config = render_haproxy_config(full_lb(), opts)
    cookie = backend(config, P[201], L[101])
    assert "cookie SRV insert indirect nocache" in cookie
    assert server_line(cookie, uid(301)).endswith(f"cookie {uid(301)}")
    app = backend(config, P[202], L[101])
    assert has_run(
        app,
        [
            "stick-table type string len 64 size 10k",
            "stick store-response res.cook(JSESSIONID)",
            "stick match req.cook(JSESSIONID)",
        ],
    )
    assert has_run(
        backend(config, P[203], L[103]), ["stick-table type ipv6 size 10k", "stick on src"]
    )


def test_cookie_persistence_is_left_out_of_tcp_backends(opts: RenderOptions) -> None:
    for kind in ("HTTP_COOKIE", "APP_COOKIE"):
        pool = Pool(
            id=P[201],
            protocol="TCP",
            lb_algorithm="ROUND_ROBIN",
            session_persistence=SessionPersistence(type=kind, cookie_name="c"),
            members=[member(301, "10.0.1.10")],
        )
        listener = Listener(id=L[101], protocol="TCP", protocol_port=80)
        lines = backend(render_haproxy_config(simple_lb(listener, pool), opts), P[201], L[101])
        assert not any("cookie" in line or "stick" in line for line in lines)


@pytest.mark.parametrize("name", [None, "", "a b", "a;b", 'a"b', "a,b", "a)b"])
def test_app_cookie_needs_a_cookie_name(opts: RenderOptions, name: str | None) -> None:
    pool = Pool(
        id=P[201],
        protocol="HTTP",
        lb_algorithm="ROUND_ROBIN",
        session_persistence=SessionPersistence(type="APP_COOKIE", cookie_name=name),
    )
    with pytest.raises(RenderError, match=P[201]):
        render_haproxy_config(simple_lb(pool=pool), opts)


# ---- members and health monitors -----------------------------------------------------------


def test_members(opts: RenderOptions) -> None:
    lines = backend(render_haproxy_config(full_lb(), opts), P[201], L[101])
    c = "check inter 5s fall 3 rise 2"
    assert server_line(lines, uid(301)) == (
        f"server {uid(301)} 10.0.1.10:80 weight 1 {c} addr 10.0.9.10 port 8080 cookie {uid(301)}"
    )
    assert server_line(lines, uid(302)).startswith(f"server {uid(302)} [2001:db8::10]:80 weight 0 ")
    assert server_line(lines, uid(303)).endswith(" backup")
    assert server_line(lines, uid(304)).endswith(" disabled")
    assert "option allbackups" in lines


def test_a_disabled_pool_keeps_its_members_but_disabled(opts: RenderOptions) -> None:
    lines = backend(render_haproxy_config(full_lb(), opts), P[206], L[106])
    assert server_line(lines, uid(309)) == f"server {uid(309)} 10.0.6.10:5432 weight 1 disabled"


def test_monitor_address_and_port_need_a_monitor(opts: RenderOptions) -> None:
    pool = Pool(
        id=P[201],
        protocol="HTTP",
        lb_algorithm="ROUND_ROBIN",
        members=[member(301, "10.0.1.10", monitor_address="10.9.9.9", monitor_port=9)],
    )
    lines = backend(render_haproxy_config(simple_lb(pool=pool), opts), P[201], L[101])
    assert server_line(lines, uid(301)) == f"server {uid(301)} 10.0.1.10:80 weight 1"


def test_http_monitor(opts: RenderOptions) -> None:
    config = render_haproxy_config(full_lb(), opts)
    assert has_run(
        backend(config, P[201], L[101]),
        [
            "timeout check 3s",
            "option httpchk",
            'http-check send meth GET uri "/health" ver HTTP/1.1 hdr Host "app.example.com"',
            'http-check expect rstatus "^(?:200|201|202|203|204|301)\\$"',
        ],
    )
    assert has_run(
        backend(config, P[202], L[101]),
        [
            "timeout check 3s",
            "option httpchk",
            'http-check send meth HEAD uri "/health" ver HTTP/1.0',
            'http-check expect rstatus "^(?:200|202)\\$"',
        ],
    )


@pytest.mark.parametrize(
    ("codes", "regex"),
    [
        ("200", "^(?:200)\\$"),
        ("200,202", "^(?:200|202)\\$"),
        ("200-204", "^(?:200|201|202|203|204)\\$"),
        (None, "^(?:200)\\$"),
        ("302,200-201,302", "^(?:302|200|201)\\$"),
    ],
)
def test_expected_codes(opts: RenderOptions, codes: str | None, regex: str) -> None:
    pool = Pool(
        id=P[201],
        protocol="HTTP",
        lb_algorithm="ROUND_ROBIN",
        health_monitor=http_monitor(401, expected_codes=codes),
    )
    lines = backend(render_haproxy_config(simple_lb(pool=pool), opts), P[201], L[101])
    assert f'http-check expect rstatus "{regex}"' in lines


@pytest.mark.parametrize("codes", ["", "20", "200-", "204-200", "200;", "200 ,201", "600", "2xx"])
def test_bad_expected_codes_are_refused(opts: RenderOptions, codes: str) -> None:
    pool = Pool(
        id=P[201],
        protocol="HTTP",
        lb_algorithm="ROUND_ROBIN",
        health_monitor=http_monitor(401, expected_codes=codes or "x"),
    )
    with pytest.raises(RenderError, match=uid(401)):
        render_haproxy_config(simple_lb(pool=pool), opts)


def test_http_1_1_monitor_without_domain_sends_no_host(opts: RenderOptions) -> None:
    pool = Pool(
        id=P[201],
        protocol="HTTP",
        lb_algorithm="ROUND_ROBIN",
        health_monitor=http_monitor(401, domain_name=None, http_method=None, url_path=None),
    )
    lines = backend(render_haproxy_config(simple_lb(pool=pool), opts), P[201], L[101])
    assert 'http-check send meth GET uri "/" ver HTTP/1.1' in lines


@pytest.mark.parametrize(
    ("hm_type", "check"),
    [
        ("TCP", "check inter 5s fall 3 rise 2"),
        ("PING", "check inter 5s fall 3 rise 2"),  # a TCP connect: HAProxy has no ICMP
        ("TLS-HELLO", "check inter 5s fall 3 rise 2 check-ssl verify none"),
        ("HTTPS", "check inter 5s fall 3 rise 2 check-ssl verify none"),
        ("HTTP", "check inter 5s fall 3 rise 2"),
    ],
)
def test_monitor_types(opts: RenderOptions, hm_type: str, check: str) -> None:
    pool = Pool(
        id=P[201],
        protocol="HTTP",
        lb_algorithm="ROUND_ROBIN",
        health_monitor=http_monitor(401, type=hm_type),
        members=[member(301, "10.0.1.10")],
    )
    lines = backend(render_haproxy_config(simple_lb(pool=pool), opts), P[201], L[101])
    assert server_line(lines, uid(301)) == f"server {uid(301)} 10.0.1.10:80 weight 1 {check}"
    assert ("option httpchk" in lines) == (hm_type in ("HTTP", "HTTPS"))


def test_disabled_monitor_means_no_checks(opts: RenderOptions) -> None:
    pool = Pool(
        id=P[201],
        protocol="HTTP",
        lb_algorithm="ROUND_ROBIN",
        health_monitor=http_monitor(401, enabled=False),
        members=[member(301, "10.0.1.10")],
    )
    lines = backend(render_haproxy_config(simple_lb(pool=pool), opts), P[201], L[101])
    assert not any("check" in line for line in lines)


def test_zero_delay_is_one_second(opts: RenderOptions) -> None:
    lines = backend(render_haproxy_config(full_lb(), opts), P[204], L[105])
    assert " check inter 1s fall 1 rise 1 " in server_line(lines, uid(307))


@pytest.mark.parametrize(
    "change",
    [
        {"type": "UDP-CONNECT"},
        {"type": "SCTP"},
        {"http_method": "GET /x"},
        {"url_path": "health"},
        {"url_path": "/a b"},
        {"delay": -1},
        {"max_retries": 0},
        {"timeout": "3"},
    ],
)
def test_bad_monitors_are_refused(opts: RenderOptions, change: dict) -> None:
    pool = Pool(
        id=P[201],
        protocol="HTTP",
        lb_algorithm="ROUND_ROBIN",
        health_monitor=http_monitor(401, **change),
        members=[member(301, "10.0.1.10")],
    )
    with pytest.raises(RenderError, match=uid(401)):
        render_haproxy_config(simple_lb(pool=pool), opts)


# ---- L7 --------------------------------------------------------------------------------------


def test_l7_policies_in_position_order_first_match_wins(opts: RenderOptions) -> None:
    lines = frontend(render_haproxy_config(full_lb(), opts), L[102])
    rules = [
        line
        for line in lines
        if line.startswith(("http-request", "use_backend")) and "set-header" not in line
    ]
    r = {n: uid(n) for n in range(601, 615)}
    guard = "if !statera-l7-matched"
    assert rules == [
        f"http-request set-var(txn.statera_l7) str({uid(501)}) {guard} {r[601]} {r[602]}",
        f"http-request deny {guard} {r[603]} !{r[604]}",
        f'http-request redirect location "https://www.example.com/moved?from=%%2Fold" code 301 '
        f"{guard} {r[605]} {r[606]}",
        f'http-request redirect prefix "https://static.example.com" code 308 '
        f"{guard} {r[607]} {r[608]}",
        f"http-request deny {guard} !{r[609]} !{r[610]} {r[611]}",
        f"http-request set-var(txn.statera_l7) str({uid(506)}) {guard} {r[612]}",
        f"use_backend {P[202]}:{L[102]} if {{ var(txn.statera_l7) -m str {uid(501)} }}",
        f"use_backend {P[201]}:{L[102]} if {{ var(txn.statera_l7) -m str {uid(506)} }}",
    ]
    assert "acl statera-l7-matched var(txn.statera_l7) -m found" in lines
    assert not any(r[613] in line or r[614] in line for line in lines)  # disabled ones


def test_l7_rule_criteria(opts: RenderOptions) -> None:
    acls = {
        line.split()[1]: " ".join(line.split()[2:])
        for line in frontend(render_haproxy_config(full_lb(), opts), L[102])
        if line.startswith("acl ")
    }
    assert [acls[uid(n)] for n in range(601, 613)] == [
        'path -m beg -- "/api"',
        'req.hdr(host) -i -m str -- "api.example.com"',
        'req.hdr(User-Agent) -m sub -- "curl"',
        'req.cook(banned) -m str -- "1"',
        'path -m end -- "php"',
        'path -m end -- "/old"',
        'path -m reg -- "\\\\.(png|jpe?g)\\$"',
        'path -m reg -- "^/img/[a-z]+"',
        "ssl_c_used",
        "ssl_c_verify eq 0",
        'ssl_c_s_dn(CN) -m end -- ".example.com"',
        'req.hdr(X-Version) -m reg -- "^v[0-9]+\\$"',
    ]


def test_policies_without_an_action_target_are_left_out(opts: RenderOptions) -> None:
    listener = Listener(
        id=L[101],
        protocol="HTTP",
        protocol_port=80,
        l7policies=[
            L7Policy(
                id=uid(501),
                action="REDIRECT_TO_POOL",
                position=1,
                redirect_pool_id=uid(299),
                rules=[L7Rule(id=uid(601), type="PATH", compare_type="EQUAL_TO", value="/a")],
            ),
        ],
    )
    lines = frontend(render_haproxy_config(simple_lb(listener), opts), L[101])
    assert not any("statera-l7" in line or uid(601) in line for line in lines)


def test_redirect_code_defaults_to_302(opts: RenderOptions) -> None:
    listener = Listener(
        id=L[101],
        protocol="HTTP",
        protocol_port=80,
        l7policies=[
            L7Policy(
                id=uid(501),
                action="REDIRECT_PREFIX",
                position=1,
                redirect_prefix="https://x",
                rules=[L7Rule(id=uid(601), type="PATH", compare_type="EQUAL_TO", value="/a")],
            ),
        ],
    )
    lines = frontend(render_haproxy_config(simple_lb(listener), opts), L[101])
    assert f'http-request redirect prefix "https://x" code 302 if {uid(601)}' in lines


@pytest.mark.parametrize(
    "policy",
    [
        {"action": "REDIRECT_TO_URL", "redirect_url": "https://x", "redirect_http_code": 200},
        {"action": "REDIRECT_TO_URL"},
        {"action": "REDIRECT_PREFIX", "redirect_prefix": ""},
        {"action": "DROP"},
    ],
)
def test_bad_policies_are_refused(opts: RenderOptions, policy: dict) -> None:
    listener = Listener(
        id=L[101],
        protocol="HTTP",
        protocol_port=80,
        l7policies=[
            L7Policy(
                id=uid(501),
                position=1,
                **policy,
                rules=[L7Rule(id=uid(601), type="PATH", compare_type="EQUAL_TO", value="/a")],
            ),
        ],
    )
    with pytest.raises(RenderError, match=uid(501)):
        render_haproxy_config(simple_lb(listener), opts)


def _one_rule_lb(**rule: object) -> LoadBalancer:
    values: dict[str, object] = dict(
        id=uid(601), type="HEADER", compare_type="EQUAL_TO", value="v", key="X-K"
    )
    values.update(rule)
    listener = Listener(
        id=L[101],
        protocol="HTTP",
        protocol_port=80,
        l7policies=[
            L7Policy(id=uid(501), action="REJECT", position=1, rules=[L7Rule(**values)]),  # type: ignore[arg-type]
        ],
    )
    return simple_lb(listener)


@pytest.mark.parametrize(
    ("value", "pattern"),
    [
        ('"a b"', '"a b"'),
        ('"say \\"hi\\""', '"say \\"hi\\""'),
        ('"', '"\\""'),
        ('a"b"', '"a\\"b\\""'),
    ],
)
def test_api_quoted_values_match_their_text(haproxy: Haproxy, value: str, pattern: str) -> None:
    lines = frontend(haproxy.valid(_one_rule_lb(value=value)), L[101])
    assert f"acl {uid(601)} req.hdr(X-K) -m str -- {pattern}" in lines


@pytest.mark.parametrize(
    "rule",
    [
        {"compare_type": "REGEX", "value": "(unclosed"},
        {"compare_type": "REGEX", "value": "\\N{DIGIT ONE}"},
        {"compare_type": "REGEX", "value": "(?a)x"},
        {"compare_type": "LIKE"},
        {"type": "QUERY"},
        {"key": "X K"},
        {"key": "X-K)"},
        {"key": None},
        {"type": "SSL_DN_FIELD", "key": "CN)"},
        {"type": "SSL_VERIFY_RESULT", "key": None, "value": "-1"},
        {"value": ""},
        {"value": '""'},
    ],
)
def test_bad_rules_are_refused(opts: RenderOptions, rule: dict) -> None:
    with pytest.raises(RenderError, match=uid(601)):
        render_haproxy_config(_one_rule_lb(**rule), opts)


def test_rules_per_policy_are_bounded(haproxy: Haproxy) -> None:
    def lb_with(n: int) -> LoadBalancer:
        lb = _one_rule_lb()
        lb.listeners[0].l7policies[0].rules = [
            L7Rule(
                id=uid(600 + i), type="PATH", compare_type="EQUAL_TO", value=f"/{i}", invert=True
            )
            for i in range(n)
        ]
        return lb

    haproxy.valid(lb_with(renderer.MAX_RULES_PER_POLICY))  # the longest line still parses
    with pytest.raises(RenderError, match=uid(501)):
        render_haproxy_config(lb_with(renderer.MAX_RULES_PER_POLICY + 1), haproxy.opts)


def test_l7_policies_are_left_out_of_tcp_listeners(opts: RenderOptions) -> None:
    lb = _one_rule_lb()
    lb.listeners[0].protocol = "TCP"
    lb.pools[0].protocol = "TCP"
    assert uid(601) not in render_haproxy_config(lb, opts)


# ---- ids, refs and the template's guard ------------------------------------------------------


def test_cert_file_is_a_fixed_shape_digest() -> None:
    assert cert_file("x") == cert_file("x")
    assert cert_file("x") != cert_file("y")
    assert re.fullmatch(r"[0-9a-f]{64}\.pem", cert_file("../../etc/passwd\n"))


@pytest.mark.parametrize(
    "bad_id", ["lb", "00000000-0000-4000-8000-00000000000A", f"{LB_ID}\n", f" {LB_ID}", "../x"]
)
def test_ids_must_be_uuids(opts: RenderOptions, bad_id: str) -> None:
    for setter in (
        lambda lb: setattr(lb, "id", bad_id),
        lambda lb: setattr(lb.listeners[0], "id", bad_id),
        lambda lb: setattr(lb.pools[0], "id", bad_id),
        lambda lb: setattr(lb.pools[0].members[0], "id", bad_id),
    ):
        lb = simple_lb()
        setter(lb)
        lb.listeners[0].default_pool_id = lb.pools[0].id
        with pytest.raises(RenderError):
            render_haproxy_config(lb, opts)


def test_the_template_refuses_unescaped_text() -> None:
    template = renderer._ENV.from_string("{{ value }}")
    assert template.render(value=Cfg("ok")) == "ok"
    with pytest.raises(TypeError, match="unescaped"):
        template.render(value="raw")
    with pytest.raises(TypeError, match="unescaped"):
        template.render(value=1)
    with pytest.raises(TypeError):
        renderer.words(Cfg("a"), "raw")  # type: ignore[arg-type]


# ---- every combination through haproxy -c ---------------------------------------------------

ALGORITHMS = ("ROUND_ROBIN", "LEAST_CONNECTIONS", "SOURCE_IP", "SOURCE_IP_PORT")
MONITORS = (None, "HTTP", "HTTPS", "PING", "TCP", "TLS-HELLO")
PERSISTENCE = (None, "SOURCE_IP", "HTTP_COOKIE", "APP_COOKIE")
HAPROXY_LISTENERS = ("HTTP", "HTTPS", "TERMINATED_HTTPS", "TCP")
PAIRS = [(li, po) for li in HAPROXY_LISTENERS for po in sorted(LISTENER_POOL_PROTOCOLS[li])]
POOL_COMBINATIONS = [
    (li, po, alg, hm, sp)
    for (li, po), alg, hm in itertools.product(PAIRS, ALGORITHMS, MONITORS)
    for sp in [PERSISTENCE[(ALGORITHMS.index(alg) + MONITORS.index(hm)) % len(PERSISTENCE)]]
]
L7_COMBINATIONS = [
    (li, rt.value, ct.value)
    for li in ("HTTP", "TERMINATED_HTTPS")
    for rt in L7RuleType
    for ct in L7RuleCompareType
]
_L7_VALUES = {
    "HOST_NAME": "www.example.com",
    "PATH": "/a/b",
    "FILE_TYPE": "jpg",
    "HEADER": "x-1",
    "COOKIE": "abc",
    "SSL_CONN_HAS_CERT": "True",
    "SSL_VERIFY_RESULT": "0",
    "SSL_DN_FIELD": "example",
}
_L7_KEYS = {"HEADER": "X-Custom", "COOKIE": "session", "SSL_DN_FIELD": "OU"}


@dataclass
class Combined:
    """One config holding many combinations, and HAProxy's verdict per listener."""

    checked: Checked
    by_listener: dict[str, list[str]]


def _check_combined(haproxy: Haproxy, lb: LoadBalancer) -> Combined:
    checked = haproxy.check(lb, haproxy.options(prometheus_port=0))
    owners: list[tuple[int, str]] = []  # (first line, listener id) per section
    for number, line in enumerate(checked.config.splitlines(), 1):
        if line.startswith(("frontend ", "backend ")):
            owners.append((number, line.split()[1].split(":")[-1]))
        elif line and not line[0].isspace():
            owners.append((number, ""))
    by_listener: dict[str, list[str]] = {}
    for message in checked.output.splitlines():
        if "[WARNING]" not in message and "[ALERT]" not in message:
            continue
        at = re.search(r":(\d+)\]", message)
        owner = (
            ""
            if at is None
            else max((o for o in owners if o[0] <= int(at.group(1))), default=(0, ""))[1]
        )
        by_listener.setdefault(owner, []).append(message)
    return Combined(checked, by_listener)


def _pool_combination_lb() -> LoadBalancer:
    lb = LoadBalancer(
        id=LB_ID,
        project_id=PROJECT,
        topology="SINGLE",
        vip=Vip(ip_address="203.0.113.10", subnet_id=None, network_id=None, port_id=None),
    )
    for i, (li, po, alg, hm, sp) in enumerate(POOL_COMBINATIONS):
        http_fields: dict[str, object] = {}
        if hm not in ("HTTP", "HTTPS"):
            http_fields = dict(
                http_method=None, url_path=None, expected_codes=None, domain_name=None
            )
        monitor = None if hm is None else http_monitor(4000 + i, type=hm, **http_fields)  # type: ignore[arg-type]
        pool = Pool(
            id=uid(2000 + i),
            protocol=po,
            lb_algorithm=alg,
            health_monitor=monitor,
            session_persistence=None
            if sp is None
            else SessionPersistence(type=sp, cookie_name="SID" if sp == "APP_COOKIE" else None),
            members=[
                member(30000 + 2 * i, "10.0.0.10", monitor_port=8080),
                member(30001 + 2 * i, "2001:db8::10", backup=True, weight=0),
            ],
            tls_enabled=(po == "HTTPS" and i % 2 == 0),
        )
        lb.pools.append(pool)
        lb.listeners.append(
            Listener(
                id=uid(1000 + i),
                protocol=li,
                protocol_port=10000 + i,
                default_pool_id=pool.id,
                default_tls_container_ref="ref-default" if li == "TERMINATED_HTTPS" else None,
            )
        )
    return lb


def _l7_combination_lb() -> LoadBalancer:
    lb = simple_lb()
    lb.listeners = []
    for i, (li, rtype, compare) in enumerate(L7_COMBINATIONS):
        value = _L7_VALUES[rtype]
        if compare == "REGEX" and not rtype.startswith(("SSL_CONN", "SSL_VERIFY")):
            value = "^" + re.escape(value) + "$"

        def rule(
            n: int, invert: bool, rtype: str = rtype, compare: str = compare, value: str = value
        ) -> L7Rule:
            return L7Rule(
                id=uid(n),
                type=rtype,
                compare_type=compare,
                value=value,
                key=_L7_KEYS.get(rtype),
                invert=invert,
            )

        base = 100000 + 10 * i
        policies = [
            L7Policy(
                id=uid(base + 1),
                action="REDIRECT_TO_POOL",
                position=1,
                redirect_pool_id=P[201],
                rules=[rule(base + 5, False)],
            ),
            L7Policy(id=uid(base + 2), action="REJECT", position=2, rules=[rule(base + 6, True)]),
            L7Policy(
                id=uid(base + 3),
                action="REDIRECT_TO_URL",
                position=3,
                redirect_url="https://example.com/",
                rules=[rule(base + 7, False)],
            ),
            L7Policy(
                id=uid(base + 4),
                action="REDIRECT_PREFIX",
                position=4,
                redirect_prefix="https://example.com",
                redirect_http_code=307,
                rules=[rule(base + 8, True), rule(base + 9, False)],
            ),
        ]
        lb.listeners.append(
            Listener(
                id=uid(1000 + i),
                protocol=li,
                protocol_port=10000 + i,
                l7policies=policies,
                default_tls_container_ref="ref-default" if li == "TERMINATED_HTTPS" else None,
                client_ca_tls_container_ref="ref-ca" if li == "TERMINATED_HTTPS" else None,
            )
        )
    return lb


@pytest.fixture(scope="module")
def pool_combinations(haproxy: Haproxy) -> Combined:
    return _check_combined(haproxy, _pool_combination_lb())


@pytest.fixture(scope="module")
def l7_combinations(haproxy: Haproxy) -> Combined:
    return _check_combined(haproxy, _l7_combination_lb())


def test_all_pool_combinations_pass_haproxy_check(pool_combinations: Combined) -> None:
    assert pool_combinations.checked.returncode == 0, pool_combinations.checked.output
    assert pool_combinations.by_listener == {}


@pytest.mark.parametrize(
    ("index", "combination"),
    list(enumerate(POOL_COMBINATIONS)),
    ids=["-".join(str(x) for x in c) for c in POOL_COMBINATIONS],
)
def test_pool_combination(
    pool_combinations: Combined,
    index: int,
    combination: tuple[str, str, str, str | None, str | None],
) -> None:
    listener_id = uid(1000 + index)
    assert pool_combinations.by_listener.get(listener_id, []) == []
    assert pool_combinations.by_listener.get("", []) == []
    lines = backend(pool_combinations.checked.config, uid(2000 + index), listener_id)
    assert any(line.startswith("balance ") for line in lines)
    assert all(line.startswith("server ") for line in lines[-2:])
    hm = combination[3]
    assert (" check " in lines[-1]) == (hm is not None)


def test_all_l7_combinations_pass_haproxy_check(l7_combinations: Combined) -> None:
    assert l7_combinations.checked.returncode == 0, l7_combinations.checked.output
    assert l7_combinations.by_listener == {}


@pytest.mark.parametrize(
    ("index", "combination"),
    list(enumerate(L7_COMBINATIONS)),
    ids=["-".join(c) for c in L7_COMBINATIONS],
)
def test_l7_combination(
    l7_combinations: Combined, index: int, combination: tuple[str, str, str]
) -> None:
    listener_id = uid(1000 + index)
    assert l7_combinations.by_listener.get(listener_id, []) == []
    assert l7_combinations.by_listener.get("", []) == []
    lines = frontend(l7_combinations.checked.config, listener_id)
    assert sum(line.startswith("acl 0") for line in lines) == 5
    assert sum(line.startswith(("http-request", "use_backend")) for line in lines) == 6


def test_vip_spellings_bind_once(opts: RenderOptions) -> None:
    lb = simple_lb()
    lb.vip = Vip(ip_address="2001:DB8::0:10", subnet_id=None, network_id=None, port_id=None)
    lb.additional_vips = [AdditionalVip(subnet_id="s", ip_address="2001:db8::10")]
    binds = [li for li in frontend(render_haproxy_config(lb, opts), L[101]) if "bind" in li]
    assert binds == ["bind [2001:db8::10]:80"]


@pytest.mark.parametrize("address", ["203.0.113.300", "fe80::1%eth0", "vip.example.com", ""])
def test_bad_vip_addresses_are_refused(opts: RenderOptions, address: str) -> None:
    lb = simple_lb()
    lb.additional_vips = [AdditionalVip(subnet_id="s", ip_address=address or " ")]
    with pytest.raises(RenderError, match=LB_ID):
        render_haproxy_config(lb, opts)


def test_only_host_path_and_header_values_take_the_api_quoted_form(opts: RenderOptions) -> None:
    config = render_haproxy_config(_one_rule_lb(type="COOKIE", value='"a"'), opts)
    assert f'acl {uid(601)} req.cook(X-K) -m str -- "\\"a\\""' in frontend(config, L[101])


def test_crt_list_file_names_only_uuids() -> None:
    from statera.render.options import crt_list_file

    assert crt_list_file(L[102]) == f"{L[102]}.crt-list"
    with pytest.raises(RenderError):
        crt_list_file("../../etc/passwd")
