"""Where the `bosun` CLI and SDK find Bosun: arguments, then BOSUN_URL / BOSUN_TOKEN (or BOSUN_TOKEN_FILE), then
the saved config. A token is best not given as an argument: other users see arguments in the process list.

`bosun auth --url URL --token TOKEN` saves both in $XDG_CONFIG_HOME/bosun/config.json (~/.config by
default), readable by the user only (mode 0600).
"""

import json
import os
from pathlib import Path


class ConfigError(Exception):
    """Bosun's address or token is missing or unreadable; the message says how to set it."""


def config_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "bosun" / "config.json"


def saved() -> dict:
    path = config_path()
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path} cannot be read ({exc}); run bosun auth again.") from None
    return data if isinstance(data, dict) else {}


def save(url: str, token: str) -> Path:
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as out:
        json.dump({"url": url.rstrip("/"), "token": token}, out)
    path.chmod(0o600)
    return path


def token_file(path: str) -> str:
    """The token kept in a file (first line), e.g. one only the executor's user can read."""
    try:
        return Path(path).read_text().strip().splitlines()[0].strip()
    except (OSError, IndexError, UnicodeDecodeError) as exc:
        raise ConfigError(f"No token can be read from {path} ({exc or 'empty'}).") from None


def resolve(url: str | None = None, token: str | None = None) -> tuple[str, str]:
    """(url, token) from the arguments, else the environment (BOSUN_TOKEN, or BOSUN_TOKEN_FILE naming a file
    that holds it), else the saved config."""
    if not token and os.environ.get("BOSUN_TOKEN_FILE"):
        token = token_file(os.environ["BOSUN_TOKEN_FILE"])
    stored = {}
    if not (url or os.environ.get("BOSUN_URL")) or not (token or os.environ.get("BOSUN_TOKEN")):
        stored = saved()
    url = url or os.environ.get("BOSUN_URL") or stored.get("url")
    token = token or os.environ.get("BOSUN_TOKEN") or stored.get("token")
    if not url:
        raise ConfigError("Bosun's address is not set: run bosun auth --url URL --token TOKEN, or set BOSUN_URL.")
    if not token:
        raise ConfigError("No API token is set: run bosun auth --url URL --token TOKEN, or set BOSUN_TOKEN.")
    return url.rstrip("/"), token
