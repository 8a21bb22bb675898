"""`kill -USR1 <pid>` makes a long-running Bosun process (`up`, `run_engine`) write the stack of every thread to
its standard error, without stopping it: what it is doing when it seems stuck."""

import faulthandler
import signal
import sys


def dump_on_signal():
    if hasattr(signal, "SIGUSR1"):  # not on Windows
        faulthandler.register(signal.SIGUSR1, file=sys.stderr, all_threads=True)
