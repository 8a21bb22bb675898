import os
import sys

from django.apps import AppConfig


class BridgeConfig(AppConfig):
    name = "bridge"
    verbose_name = "Bridge"

    def ready(self):
        from . import logins  # noqa: F401  (connects the login signals)

        # Live pushes only where pages can be connected: the server (manage.py up, daphne), not tests or
        # management commands that merely touch the database.
        serving = "up" in sys.argv[1:2] or "daphne" in os.path.basename(sys.argv[0]) or os.environ.get("BOSUN_LIVE") == "1"
        if serving:
            from . import live

            live.start()
