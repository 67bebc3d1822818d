"""``statera amphora-agent --config FILE``: run the amphora agent.

Mount with ``app.add_typer(agent.app, name="amphora-agent")``. Images that only run the
agent can call ``python -m statera.agent FILE``, which loads less.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help="Run the amphora agent (agent API 1.0 over mutual TLS).",
                  add_completion=False)


@app.callback(invoke_without_command=True)
def amphora_agent(
    config: Annotated[Path, typer.Option("--config", help="The agent's INI config file.",
                                         exists=True, dir_okay=False, readable=True)],
) -> None:
    """Run the amphora agent until SIGTERM or SIGINT."""
    from statera.agent.main import run_agent

    try:
        run_agent(config)
    except (ValueError, OSError) as exc:  # a bad config, a missing or unreadable cert file
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
