from django.apps import AppConfig


class BridgeConfig(AppConfig):
    name = "bridge"
    verbose_name = "Bridge"

    def ready(self):
        from . import logins  # noqa: F401  (connects the login signals)
        # The live pusher is started by the processes that change state (bridge/live.py's start()), never
        # here: importing Django must not start threads.
