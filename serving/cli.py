"""`influence` subcommands of the serving package (merged into influence.cli)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

app = typer.Typer()

SERVICE = "serving.service:InfluenceService"


@app.command()
def serve(
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1.", min=1, max=65535)] = 3000,
    bundle: Annotated[
        Optional[Path],
        typer.Option(help="Serve this saved ModelBundle folder instead of the registry's "
                     "champion (sets INFLUENCE_BUNDLE_DIR).", exists=True, file_okay=False),
    ] = None,
) -> None:
    """Serve the champion model over HTTP on 127.0.0.1 (BentoML): POST /score, /score_batch;
    OpenAPI at /docs.json. Set INFLUENCE_API_KEY to require `Authorization: Bearer <key>`."""
    from serving.launch import HOST, QUIET_ENV, serve_command

    env = {**os.environ, **QUIET_ENV}
    if bundle is not None:
        env["INFLUENCE_BUNDLE_DIR"] = str(bundle.resolve())
    url = f"http://{HOST}:{port}"
    typer.echo(f"serving {SERVICE} on {url} (OpenAPI: {url}/docs.json)", err=True)
    sys.stdout.flush()
    command = serve_command(SERVICE, port)
    os.execve(command[0], command, env)
