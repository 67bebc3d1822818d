"""``python -m statera.agent CONFIG``: the agent without the control plane's CLI loaded."""

import sys

# A host starts one agent per amphora: let the first cache the agent's bytecode even where
# the environment asks for none (PYTHONDONTWRITEBYTECODE, common in development shells), so
# the others skip compiling it (tens of milliseconds of each start). A read-only tree is
# simply left as it is.
sys.dont_write_bytecode = False

from statera.agent.main import run_agent  # noqa: E402 - after the setting above

if len(sys.argv) != 2:
    sys.exit("usage: python -m statera.agent CONFIG")
run_agent(sys.argv[1])
