"""What the haproxy.cfg renderer needs to know besides the load balancer itself.

These are operator and amphora-layout facts (paths inside the amphora, logging, peers of an
ACTIVE_STANDBY pair), passed in by the caller: the renderer reads no global configuration.
Every path and name here is re-checked by the renderer before it reaches the file.
"""

from __future__ import annotations

import hashlib
import sys
from dataclasses import dataclass, field

from statera.render.escape import object_id

# Upstream's default flow-log format; {project_id} and {lb_id} are filled in per load balancer.
DEFAULT_USER_LOG_FORMAT = (
    "{project_id} {lb_id} %f %ci %cp %t %{+Q}r %ST %B %U %[ssl_c_verify] %{+Q}[ssl_c_s_dn] "
    "%b %s %Tt %tsc"
)


@dataclass(frozen=True)
class RenderOptions:
    base_path: str
    """Amphora-side directory of this load balancer (sockets, state file and certs live under
    it). haproxy.cfg names only the paths below; this one is kept for the agent's layout."""
    stats_socket: str
    """HAProxy's admin socket (``level admin``, mode 0600), read by the agent and heartbeats."""
    server_state_file: str
    cert_dir: str
    """Where the agent writes this load balancer's PEM bundles and crt-list files."""
    connection_logging: bool = True
    log_target: str | None = None
    """``/dev/log``, ``udp@192.0.2.1:514``… None: no log lines at all."""
    user_log_format: str = DEFAULT_USER_LOG_FORMAT
    peers: tuple[tuple[str, str, int], ...] = ()
    """(peer name, IP, port) of every amphora of an ACTIVE_STANDBY pair; empty for SINGLE."""
    local_peer: str | None = None
    prometheus_port: int = 9101
    """Loopback port of the internal exporter frontend, rendered when the load balancer has a
    PROMETHEUS listener; 0 leaves it out."""
    prometheus_proxy_port: int = 9102
    """Loopback port of the metrics proxy that renames HAProxy's exporter into Octavia's
    ``octavia_*`` names (statera.agent.prometheus, run by HAProxy's master as a ``program``);
    PROMETHEUS listeners forward to it. 0: no proxy, listeners serve HAProxy's own names."""
    prometheus_proxy_command: tuple[str, ...] = field(
        default_factory=lambda: (sys.executable, "-m", "statera.agent.prometheus"))
    """How the amphora starts the metrics proxy (the renderer adds where it listens and
    where the exporter is). An absolute program path, then plain words."""
    hard_stop_after: str = "60s"
    nbthread: int = 1
    default_connection_limit: int = 50000
    global_maxconn_cap: int | None = None
    """Upper bound of the process-wide maxconn, whatever else is known."""
    fd_limit: int | None = None
    """File descriptors HAProxy may open (its hard RLIMIT_NOFILE). HAProxy refuses to start
    (or to reload) when its maxconn needs more, so the renderer keeps maxconn within it:
    see ``haproxy.fd_bound``. None: no such limit."""
    # Listener timeouts (ms) used when the listener's own value is None.
    timeout_client_data: int = 50000
    timeout_member_connect: int = 5000
    timeout_member_data: int = 50000
    timeout_tcp_inspect: int = 0


def cert_file(ref: str) -> str:
    """The file name (under ``cert_dir``) of the PEM bundle for a TLS container reference.

    A digest of the reference: any string maps to a fixed-shape, path-safe name, and the
    agent, which writes the certificates, computes exactly the same one.
    """
    return hashlib.sha256(ref.encode("utf-8", "surrogatepass")).hexdigest() + ".pem"


def crt_list_file(listener_id: str) -> str:
    """The file name (under ``cert_dir``) of a TLS-terminating listener's crt-list. Raises
    RenderError unless ``listener_id`` is a UUID."""
    return f"{object_id(listener_id, 'listener id')}.crt-list"
