"""The v2 routers, one module per resource; mounted under /v2 and /v2.0."""

from statera.api.v2 import (
    amphorae,
    availabilityzoneprofiles,
    availabilityzones,
    flavorprofiles,
    flavors,
    healthmonitors,
    l7policies,
    l7rules,
    listeners,
    loadbalancers,
    members,
    pools,
    providers,
    quotas,
)

ROUTERS = [
    loadbalancers.router,
    listeners.router,
    pools.router,
    members.router,
    healthmonitors.router,
    l7policies.router,
    l7rules.router,
    quotas.router,
    providers.router,
    flavors.router,
    flavorprofiles.router,
    availabilityzones.router,
    availabilityzoneprofiles.router,
    amphorae.router,
]
