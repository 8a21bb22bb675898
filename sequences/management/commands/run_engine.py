import signal

from django.core.management.base import BaseCommand

from sequences.engine import Engine
from sequences.management.stacks import dump_on_signal
from sequences.notices import sending as delivering


class Command(BaseCommand):
    help = "Run the engine: timeouts, delayed tasks, repairs and webhook deliveries. Safe to run several at once."

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true", help="Do one step and exit (for tests and cron)")
        parser.add_argument("--max-sleep", type=float, default=1.0,
                            help="Look again at least this often (seconds), for changes made by other processes")

    def handle(self, once, max_sleep, **options):
        engine = Engine(max_sleep=max_sleep, repair_every=0 if once else 30.0)
        if once:
            did = engine.step()
            did = delivering.send_due() > 0 or did
            self.stdout.write("did work" if did else "nothing to do")
            return
        from bridge import live

        live.start()  # what the engine changes (timeouts, delayed tasks, repairs) reaches pages and executors
        dump_on_signal()
        signal.signal(signal.SIGINT, engine.stop)
        signal.signal(signal.SIGTERM, engine.stop)
        engine.run()
