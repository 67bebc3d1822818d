"""Pure renderers: domain objects to haproxy.cfg and keepalived.conf."""
