"""`manage.py up`: migrate, ensure the admin user and a token, the demo project, then serve with daphne."""

import logging
import os
import secrets
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand

from sequences.demo import ensure_demo_project
from sequences.management.stacks import dump_on_signal
from sequences.models import ApiToken

log = logging.getLogger("bosun.up")


def kept_token(user, name: str, path: Path) -> tuple[str, bool]:
    """The token kept in `path` (mode 0600) if it still works, else a new one written there.

    Tokens are stored hashed, so the file is the only place the plaintext lives; scripts and executors
    set up with it keep working across restarts. Returns (plaintext, created).
    """
    if path.exists():
        plaintext = path.read_text().strip()
        token = ApiToken.authenticate(plaintext)
        if token is not None and token.user_id == user.id:
            return plaintext, False
    _, plaintext = ApiToken.issue(user, name)
    path.write_text(plaintext + "\n")
    path.chmod(0o600)
    return plaintext, True


# What the server knows and its local executor must not (its jobs could read the executor's environment).
SERVER_SECRETS = {"BOSUN_SECRET_KEY", "BOSUN_ADMIN_PASSWORD", "BOSUN_TOKEN", "DATABASE_URL", "REDIS_URL"}


def private(data_dir: Path):
    """The data directory and what is in it (database, WAL, secret key, tokens) for this user only."""
    data_dir.chmod(0o700)
    for path in data_dir.iterdir():
        if path.is_file() and not path.is_symlink():
            path.chmod(0o600)


class Supervised:
    """A child process that is started again whenever it exits (and reaped, so it never lingers as a zombie)."""

    def __init__(self, what: str, start):
        self.what = what
        self.start = start
        self.stopping = threading.Event()
        self.process: subprocess.Popen = start()
        self.thread = threading.Thread(target=self._watch, name="supervise-executor", daemon=True)
        self.thread.start()

    def _watch(self):
        backoff = 1.0
        while True:
            started = time.monotonic()
            code = self.process.wait()
            if self.stopping.is_set():
                return
            if time.monotonic() - started > 60:
                backoff = 1.0  # it ran a while: a crash, not a crash loop
            log.warning("%s exited with code %s; starting it again in %gs", self.what, code, backoff)
            if self.stopping.wait(backoff):
                return
            self.process = self.start()
            backoff = min(backoff * 2, 30.0)

    def stop(self):
        self.stopping.set()
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


class Command(BaseCommand):
    help = "Bring Bosun up: migrate, admin user, API token, demo project, HTTP + websockets + engine."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--no-demo", action="store_true", help="Do not create the sockshop demo project")
        parser.add_argument("--data-dir", help="Where the SQLite database lives (default ./var)")
        parser.add_argument("--no-engine", action="store_true", help="Do not run the engine in this process")
        parser.add_argument("--no-executor", action="store_true", help="Do not start the local job executor")

    def handle(self, host, port, no_demo, no_engine, no_executor, **options):
        dump_on_signal()
        # The database, its WAL, the secret key and the tokens: readable by this user only.
        os.umask(0o077)
        settings.DATA_DIR.mkdir(parents=True, exist_ok=True)
        private(settings.DATA_DIR)
        call_command("migrate", interactive=False, verbosity=0)
        self._ensure_admin()
        if not no_demo:
            _, created = ensure_demo_project()
            if created:
                self.stdout.write("Created the demo project 'sockshop' (stages dev, staging, production; "
                                  "services carts, orders).")
        self.stdout.write(self.style.SUCCESS(f"Bosun is up on http://{host}:{port}/bridge/  "
                                             f"(API docs: http://{host}:{port}/api/docs)"))
        self.stdout.write(f"Database: {settings.DATABASES['default']['NAME']}  ·  Ctrl+C stops.")
        executor = None
        if not no_executor and settings.BOSUN_RUN_EXECUTOR:
            self.stdout.write(f"Job executor: running the projects' jobs ({settings.DATA_DIR / 'jobs'}); "
                              "--no-executor turns it off.")
            executor = Supervised("the local job executor", lambda: self._start_executor(host, port))
        try:
            self._serve(host, port, run_engine=not no_engine and settings.BOSUN_RUN_ENGINE)
        finally:
            if executor is not None:
                executor.stop()
        # Everything is stopped and committed. Leave now: the interpreter's final garbage collection of
        # websocket coroutines that daphne left suspended can crash (SIGSEGV) when a socket was open.
        self.stdout.write("Bosun stopped.")
        self.stdout.flush()
        sys.stderr.flush()
        os._exit(0)

    def _start_executor(self, host, port) -> subprocess.Popen:
        """One local job executor (`bosun executor`), a client of this server like any other.

        It gets none of the server's secrets: its token comes in a file, and its environment leaves out the
        secret key, the admin password and the database and Redis addresses. Its jobs run in a temporary
        folder outside the data directory (as `nobody` when Bosun runs as root).

        Its name carries this process's id: after a crash, the next one does not claim the tasks its
        predecessor had claimed (their jobs may still run); those tasks time out by heartbeat instead."""
        address = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
        env = {name: value for name, value in os.environ.items() if name not in SERVER_SECRETS}
        env.update(BOSUN_TOKEN_FILE=str(self._executor_token_file()), BOSUN_EXIT_WITH_PARENT=str(os.getpid()))
        command = [sys.executable, "-m", "bosun", "executor", "--url", f"http://{address}:{port}",
                   "--name", f"local-executor/{socket.gethostname()}/{os.getpid()}"]
        return subprocess.Popen(command, env=env, start_new_session=True)

    def _ensure_admin(self):
        User = get_user_model()
        user = User.objects.filter(username="admin").first()
        if user is None:
            password = os.environ.get("BOSUN_ADMIN_PASSWORD") or secrets.token_urlsafe(12)
            user = User.objects.create_superuser("admin", "", password)
            if os.environ.get("BOSUN_ADMIN_PASSWORD"):
                self.stdout.write("Created user 'admin' with the password from BOSUN_ADMIN_PASSWORD.")
            else:
                self.stdout.write(f"Created user 'admin' with password: {password}  (shown once; "
                                  "change it in /admin/)")
        elif os.environ.get("BOSUN_ADMIN_PASSWORD") and not user.check_password(os.environ["BOSUN_ADMIN_PASSWORD"]):
            user.set_password(os.environ["BOSUN_ADMIN_PASSWORD"])
            user.save(update_fields=["password"])
        plaintext, _ = kept_token(user, "bosun-up", settings.DATA_DIR / "admin-token")
        self.stdout.write(f"API token for admin: {plaintext}  (kept in {settings.DATA_DIR / 'admin-token'})")
        self.stdout.write(f"  export BOSUN_TOKEN={plaintext}")

    def _executor_token_file(self) -> Path:
        """The file holding the local job executor's own token (its user may only operate), kept across
        restarts."""
        from django.contrib.auth.models import Permission

        User = get_user_model()
        user, created = User.objects.get_or_create(username="bosun-executor")
        if created:
            user.set_unusable_password()
            user.save()
            user.user_permissions.add(Permission.objects.get(codename="operate_sequences"))
        kept_token(user, "local-executor", settings.DATA_DIR / "executor-token")
        return settings.DATA_DIR / "executor-token"

    def _serve(self, host, port, run_engine):
        from daphne.endpoints import build_endpoint_description_strings
        from daphne.server import Server

        from bridge import live
        from bridge.asgi import application

        live.start()  # explicitly, whatever BOSUN_LIVE says: up serves pages and executors
        engine_thread = None
        if run_engine:
            try:
                from sequences.engine import start_in_thread
            except ImportError:
                start_in_thread = None
            if start_in_thread is not None:
                engine_thread = start_in_thread()
        server = Server(
            application=application,
            endpoints=build_endpoint_description_strings(host=host, port=port),
            signal_handlers=True,
            verbosity=0,
        )
        try:
            server.run()
        finally:
            if engine_thread is not None:
                engine_thread.stop()
