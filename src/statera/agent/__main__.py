"""``python -m statera.agent CONFIG``: the agent without the control plane's CLI loaded."""

import sys

from statera.agent.main import run_agent

if len(sys.argv) != 2:
    sys.exit("usage: python -m statera.agent CONFIG")
run_agent(sys.argv[1])
