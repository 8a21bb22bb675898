"""`manage.py up`: migrate, ensure the admin user and a token, the demo project, then serve with daphne."""

import logging
import os
import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand

from sequences.demo import ensure_demo_project
from sequences.models import ApiToken

log = logging.getLogger("bosun.up")


class Command(BaseCommand):
    help = "Bring Bosun up: migrate, admin user, API token, demo project, HTTP + websockets + engine."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--no-demo", action="store_true", help="Do not create the sockshop demo project")
        parser.add_argument("--data-dir", help="Where the SQLite database lives (default ./var)")
        parser.add_argument("--no-engine", action="store_true", help="Do not run the engine in this process")

    def handle(self, host, port, no_demo, no_engine, **options):
        settings.DATA_DIR.mkdir(parents=True, exist_ok=True)
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
        self._serve(host, port, run_engine=not no_engine and settings.BOSUN_RUN_ENGINE)

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
        # One live token per `up`: the one printed now. Earlier ones of this name are revoked.
        from django.utils import timezone

        ApiToken.objects.filter(user=user, name="bosun-up", revoked_at__isnull=True).update(revoked_at=timezone.now())
        _, plaintext = ApiToken.issue(user, "bosun-up")
        self.stdout.write(f"API token for admin: {plaintext}")
        self.stdout.write(f"  export BOSUN_TOKEN={plaintext}")

    def _serve(self, host, port, run_engine):
        from daphne.endpoints import build_endpoint_description_strings
        from daphne.server import Server

        from bridge.asgi import application

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
            self.stdout.write("Bosun stopped.")
