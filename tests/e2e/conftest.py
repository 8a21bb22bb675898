"""A real Bosun (manage.py up: daphne, websockets, engine) in a subprocess, for the browser tests."""

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.test_up import free_port

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "tests" / "screenshots"
ADMIN_PASSWORD = "e2e-admin-password"


def start_bosun(data, port):
    """`manage.py up` on a port with a data folder, no executor (tests play executor); returns (process, url, token)."""
    skip = ("DATABASE_URL", "REDIS_URL")
    env = {k: v for k, v in os.environ.items() if k not in skip}
    env.update(BOSUN_ADMIN_PASSWORD=ADMIN_PASSWORD, PYTHONUNBUFFERED="1",
               BOSUN_CSRF_TRUSTED_ORIGINS=f"http://127.0.0.1:{port}")
    log = data / f"up-{time.monotonic_ns()}.log"
    with open(log, "w") as out:
        process = subprocess.Popen([sys.executable, "manage.py", "up", "--port", str(port), "--data-dir", str(data),
                                    "--no-executor"],
                                   cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(f"{url}/api/openapi.json", timeout=1)
            break
        except httpx.TransportError:
            if time.monotonic() > deadline or process.poll() is not None:
                raise AssertionError("Bosun did not come up:\n" + log.read_text())
            time.sleep(0.1)
    token = re.search(r"API token for admin: (bsn_\S+)", log.read_text()).group(1)
    return process, url, token


@pytest.fixture(scope="session")
def bosun(tmp_path_factory):
    """{url, token, password, data} of a running Bosun with the demo project (`data`: its data folder)."""
    data = tmp_path_factory.mktemp("bosun-e2e")
    process, url, token = start_bosun(data, free_port())
    yield {"url": url, "token": token, "password": ADMIN_PASSWORD, "data": data}
    process.terminate()
    process.wait(timeout=15)


def log_in(page, url):
    page.goto(f"{url}/bridge/")
    page.get_by_label("Username").fill("admin")
    page.get_by_label("Password").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{url}/bridge/")
    return page


@pytest.fixture
def shot():
    """Save a screenshot of the page under tests/screenshots/ (git-ignored) to look at."""
    SCREENSHOTS.mkdir(exist_ok=True)

    def take(page, name):
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)

    return take


@pytest.fixture
def logged_in(page, bosun):
    return log_in(page, bosun["url"])
