"""The `bosun` command line."""

import logging
import os
import signal
import sys

import typer

app = typer.Typer(help="Bosun from the command line: run a job executor against a Bosun server.",
                  no_args_is_help=True, add_completion=False)


@app.callback()
def _commands():
    """Bosun from the command line."""


def _setting(value: str | None, env: str, what: str) -> str:
    value = value or os.environ.get(env)
    if not value:
        typer.echo(f"Error: give {what} with --{what} or the {env} environment variable.", err=True)
        raise typer.Exit(2)
    return value


@app.command()
def executor(
    url: str = typer.Option(None, help="Bosun's address, e.g. http://127.0.0.1:8000 (or BOSUN_URL)"),
    token: str = typer.Option(None, help="An API token of a user who may operate sequences (or BOSUN_TOKEN)"),
    project: list[str] = typer.Option([], "--project", "-p", help="Only this project's jobs (repeatable)"),
    concurrency: int = typer.Option(2, min=1, max=64, help="Jobs run at the same time"),
    name: str = typer.Option(None, help="The executor's name in events (default bosun-executor/<host>/<pid>)"),
    work_dir: str = typer.Option(None, help="Where each job gets its folder (default: a new temporary folder)"),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log more"),
):
    """Run the jobs of projects' job definitions for the tasks Bosun triggers, until stopped."""
    from .executor import Executor

    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    runner = Executor(_setting(url, "BOSUN_URL", "url"), _setting(token, "BOSUN_TOKEN", "token"), projects=project,
                      concurrency=concurrency, name=name, work_dir=work_dir)
    signal.signal(signal.SIGTERM, runner.stop)
    signal.signal(signal.SIGINT, runner.stop)
    runner.run()


def main():
    app()


if __name__ == "__main__":
    main()
