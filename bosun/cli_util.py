"""The `bosun` CLI's plumbing: one-line errors with exit codes, output formats, the y/N question."""

import json
import sys
from contextlib import contextmanager

import typer
from rich.console import Console

from .client import TERMINAL, BadAnswer, BosunError, Unreachable
from .config import ConfigError
from .images import ImageError
from .sdk import Client

EXIT_FAILED, EXIT_USAGE, EXIT_UNREACHABLE, EXIT_AUTH, EXIT_NOT_FOUND, EXIT_REFUSED, EXIT_UNCONFIRMED = 1, 2, 3, 4, 5, 6, 7

out = Console()
err = Console(stderr=True, soft_wrap=True)
OUTPUT = typer.Option("table", "--output", "-o", help="table, json or yaml")


def client() -> Client:
    """The SDK's client, from the saved configuration or the environment, saying it is the CLI."""
    return Client(source="cli")


@contextmanager
def errors():
    """Bosun's own message in one line and a documented exit code, never a traceback."""
    try:
        yield
    except (ConfigError, ImageError) as exc:
        err.print(f"[red]Error:[/] {exc}", highlight=False)
        raise typer.Exit(EXIT_USAGE) from None
    except Unreachable as exc:
        err.print(f"[red]Error:[/] {exc}", highlight=False)
        raise typer.Exit(EXIT_UNREACHABLE) from None
    except BadAnswer as exc:  # something that is not Bosun answered (a proxy's page): as good as unreachable
        err.print(f"[red]Error:[/] {exc.message}", highlight=False)
        raise typer.Exit(EXIT_UNREACHABLE) from None
    except BosunError as exc:
        code = {401: EXIT_AUTH, 403: EXIT_AUTH, 404: EXIT_NOT_FOUND}.get(exc.code, EXIT_REFUSED)
        hint = " (check the token: bosun auth, or BOSUN_TOKEN)" if exc.code == 401 else ""
        err.print(f"[red]Error ({exc.code}):[/] {exc.message}{hint}", highlight=False)
        raise typer.Exit(code) from None
    except KeyboardInterrupt:
        err.print("Interrupted.")
        raise typer.Exit(130) from None


def fitted(title: str, headers: list[str], rows: list[list[str]], *, shorten=None, width: int | None = None):
    """A table that reads at any terminal width: no column ever breaks a word. When the columns do not fit
    side by side, each row is its first field (`shorten`ed) and the rest of it, wrapped between fields."""
    from rich import box
    from rich.table import Table

    width = width or out.width
    natural = sum(max([len(h)] + [len(str(row[i])) for row in rows]) + 3 for i, h in enumerate(headers))
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    if natural <= width:
        for header in headers:
            table.add_column(header, no_wrap=True)
        for row in rows:
            table.add_row(*[str(value) for value in row])
        return table
    table.add_column(headers[0], no_wrap=True)
    table.add_column(" · ".join(headers[1:]))
    for row in rows:
        table.add_row(shorten(row[0]) if shorten else str(row[0]), " · ".join(str(v) for v in row[1:] if v))
    if shorten:
        table.caption = f"{headers[0]}s are shortened here; a wider terminal or --output json shows them whole"
    return table


def emit(data, output: str, table=None):
    if output == "json":
        print(json.dumps(data, indent=2))
    elif output == "yaml":
        import yaml

        print(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), end="")
    elif output == "table" and table is not None:
        out.print(table)
    elif output == "table":
        print(json.dumps(data, indent=2))
    else:
        err.print(f"[red]Error:[/] unknown output {output!r}: use table, json or yaml")
        raise typer.Exit(EXIT_USAGE)


def confirm(action: str, items: list[str], yes: bool):
    """A question before anything destructive; no terminal means no, unless --yes."""
    if yes:
        return
    if not sys.stdin.isatty():
        err.print(f"[red]Error:[/] refusing to {action} without --yes: there is no terminal to ask.")
        raise typer.Exit(EXIT_UNCONFIRMED)
    print(f"You are about to {action} the following:")
    for item in items:
        print(f"  - {item}")
    answer = input("Are you sure you want to proceed (y/[N])? ").strip().lower()
    if answer not in ("y", "yes"):
        print("Nothing was done.")
        raise typer.Exit(EXIT_UNCONFIRMED)


def pairs(values: list[str], what: str) -> dict:
    """k=v options into a dict; a.b=c nests."""
    found: dict = {}
    for value in values:
        key, sep, val = value.partition("=")
        if not sep or not key:
            err.print(f"[red]Error:[/] {what} {value!r} is not key=value")
            raise typer.Exit(EXIT_USAGE)
        target = found
        *path, last = key.split(".")
        for part in path:
            target = target.setdefault(part, {})
        target[last] = val
    return found


def short(run: dict) -> str:
    """An execution: its state while it runs or waits (Keptn's words), then how it ended as Bosun shows it
    (its `outcome`), e.g. "failed (rolled back)"."""
    shown = run.get("outcome") or {}
    if run["status"]["state"] in TERMINAL and shown.get("label"):
        return shown["label"][0].lower() + shown["label"][1:]
    return run["status"]["state"]



