"""Failed tokens and logins are throttled per address; websockets only from the Bridge's own origin;
`check --deploy` is clean with the documented production settings."""

import ipaddress
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import time_machine
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client, override_settings

from bridge.asgi import application
from sequences.models import ApiToken

ROOT = Path(__file__).resolve().parent.parent


def api_get(token, address):
    return Client(REMOTE_ADDR=address).get("/api/controlPlane/v1/project", HTTP_X_TOKEN=token)


# --- 6. throttling ---------------------------------------------------------------------------


def test_bad_tokens_are_throttled_per_address_and_valid_tokens_there_still_work(admin_api, viewer_user, settings,
                                                                                caplog):
    settings.BOSUN_THROTTLE_FAILURES = 20
    good = admin_api.headers["HTTP_X_TOKEN"]
    _, viewer = ApiToken.issue(viewer_user, "viewer")
    answers = [api_get(f"bsn_guess{i}", "10.0.0.66").status_code for i in range(200)]  # a burst of 200 guesses
    assert answers[:20] == [401] * 20
    assert answers[20:] == [429] * 180
    refused = api_get("bsn_guess", "10.0.0.66")
    assert "Too many failed API token checks" in refused.json()["message"]
    # the guesses never lock out a valid token at the same address (everyone behind one proxy)
    assert api_get(good, "10.0.0.66").status_code == 200
    assert api_get(viewer, "10.0.0.66").status_code == 200
    assert api_get(good, "10.0.0.7").status_code == 200
    assert "bad API token from 10.0.0.66" in caplog.text


def test_retry_after_tells_the_seconds_left_in_the_window_and_the_window_ends_then(db, settings):
    settings.BOSUN_THROTTLE_FAILURES = 3
    settings.BOSUN_THROTTLE_WINDOW = 300
    with time_machine.travel("2026-12-01 10:00:00", tick=False) as clock:
        assert [api_get("bsn_x", "10.0.0.70").status_code for _ in range(3)] == [401] * 3
        clock.shift(60)
        refused = api_get("bsn_x", "10.0.0.70")
        assert (refused.status_code, refused["Retry-After"]) == (429, "240")
        clock.shift(200)
        assert api_get("bsn_x", "10.0.0.70")["Retry-After"] == "40"  # refusals do not stretch the window
        clock.shift(40)
        assert api_get("bsn_x", "10.0.0.70").status_code == 401  # the window ended when Retry-After said


def test_behind_a_trusted_proxy_the_forwarded_client_is_throttled_not_the_proxy(db, settings):
    settings.BOSUN_THROTTLE_FAILURES = 2
    settings.BOSUN_TRUSTED_PROXIES = [ipaddress.ip_network("10.9.0.0/24")]

    def via_proxy(token, forwarded):
        return Client(REMOTE_ADDR="10.9.0.1").get("/api/controlPlane/v1/project", HTTP_X_TOKEN=token,
                                                  HTTP_X_FORWARDED_FOR=forwarded)

    assert [via_proxy("bsn_x", "203.0.113.5").status_code for _ in range(3)] == [401, 401, 429]
    assert via_proxy("bsn_x", "203.0.113.6").status_code == 401  # another client behind the same proxy
    # a client cannot name another address in front of the proxy's own entry
    assert via_proxy("bsn_x", "203.0.113.6, 203.0.113.5").status_code == 429
    # an untrusted peer's X-Forwarded-For is ignored
    settings.BOSUN_TRUSTED_PROXIES = []
    assert Client(REMOTE_ADDR="10.0.0.80").get("/api/controlPlane/v1/project", HTTP_X_TOKEN="bsn_x",
                                              HTTP_X_FORWARDED_FOR="203.0.113.5").status_code == 401


def test_requests_without_a_token_are_not_counted_as_guesses(db, settings):
    settings.BOSUN_THROTTLE_FAILURES = 3
    client = Client(REMOTE_ADDR="10.0.0.9")
    assert [client.get("/api/controlPlane/v1/project").status_code for _ in range(5)] == [401] * 5


def login(path, username, password, address):
    return Client(REMOTE_ADDR=address).post(path, {"username": username, "password": password})


@pytest.mark.parametrize("path", ["/accounts/login/", "/admin/login/"])
def test_bad_logins_are_throttled_per_address(admin_user, settings, path):
    settings.BOSUN_THROTTLE_FAILURES = 10
    answers = [login(path, "admin-user", f"wrong{i}", "10.0.1.1").status_code for i in range(12)]
    assert answers[:10] == [200] * 10  # the form again, with its error
    assert answers[10:] == [429, 429]
    refused = login(path, "admin-user", "pw-admin-user", "10.0.1.1")
    assert refused.status_code == 429 and int(refused["Retry-After"]) > 0
    assert "Too many failed logins" in refused.content.decode()
    assert login(path, "admin-user", "pw-admin-user", "10.0.1.2").status_code == 302


def test_a_user_attacked_from_many_addresses_is_throttled_there_but_not_from_a_clean_address(admin_user, settings):
    settings.BOSUN_THROTTLE_FAILURES = 100
    settings.BOSUN_THROTTLE_USER_FAILURES = 10
    for i in range(10):
        assert login("/accounts/login/", "admin-user", "wrong", f"10.0.2.{i}").status_code == 200
    assert login("/accounts/login/", "admin-user", "wrong", "10.0.2.3").status_code == 429
    assert login("/accounts/login/", "admin-user", "pw-admin-user", "10.0.3.1").status_code == 302


# --- 7. websocket origins --------------------------------------------------------------------


async def handshake(origin: bytes, host: bytes = b"localhost:8000", cookie: bytes = b"") -> bool:
    socket = WebsocketCommunicator(application, "/ws/live/?projects=1",
                                   headers=[(b"origin", origin), (b"host", host), (b"cookie", cookie)])
    connected, _ = await socket.connect()
    await socket.disconnect()
    return connected


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_websocket_origin_must_match_scheme_host_and_port(admin_user):
    client = Client()
    await sync_to_async(client.force_login)(admin_user)
    cookie = f"sessionid={client.cookies['sessionid'].value}".encode()
    assert await handshake(b"http://localhost:8000", cookie=cookie)
    assert not await handshake(b"http://localhost:1234", cookie=cookie)  # another port of an allowed host
    assert not await handshake(b"https://localhost:8000", cookie=cookie)  # another scheme
    assert not await handshake(b"http://localhost", cookie=cookie)  # port 80
    assert not await handshake(b"http://evil.example:8000", host=b"evil.example:8000", cookie=cookie)
    assert not await handshake(b"null", cookie=cookie)
    assert await handshake(b"http://127.0.0.1:8000", host=b"127.0.0.1:8000", cookie=cookie)


# --- 10. deploy settings ---------------------------------------------------------------------

PRODUCTION = {"BOSUN_HTTPS": "true", "BOSUN_HSTS_INCLUDE_SUBDOMAINS": "true", "BOSUN_HSTS_PRELOAD": "true",
              "BOSUN_ALLOWED_HOSTS": "bosun.example.com",
              "BOSUN_CSRF_TRUSTED_ORIGINS": "https://bosun.example.com",
              "BOSUN_SECRET_KEY": "a-production-secret-key-of-sufficient-length-and-variety-0123456789-XYZ"}


def check_deploy(tmp_path, **extra) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("BOSUN_", "DATABASE_URL", "REDIS_URL", "DJANGO_ALLOW_ASYNC_UNSAFE"))}
    env.update(BOSUN_DATA_DIR=str(tmp_path), **extra)
    return subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=120)


def test_check_deploy_is_clean_with_the_documented_production_settings(tmp_path):
    done = check_deploy(tmp_path, **PRODUCTION)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no issues" in done.stdout


def test_check_deploy_names_what_is_missing_without_them(tmp_path):
    done = check_deploy(tmp_path)
    assert done.returncode != 0
    for warning in ("W004", "W008", "W012", "W016"):
        assert warning in done.stderr + done.stdout


SHARED_CACHE = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                            "LOCATION": os.environ.get("BOSUN_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")}}


@override_settings(CACHES=SHARED_CACHE)  # as every web process of the scale-out mode shares them
def test_failures_counted_at_once_by_many_threads_are_all_counted():
    """The counters are the cache's atomic add and incr (Redis SET NX and INCR), never a read and a write."""
    import threading

    from sequences.store import throttle

    key = throttle._key("token", f"203.0.113.9-{uuid.uuid4()}")
    start = threading.Barrier(32)

    def fail():
        start.wait()
        for _ in range(10):
            throttle._add(key)

    threads = [threading.Thread(target=fail) for _ in range(32)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert throttle._count(key)[0] == 320
