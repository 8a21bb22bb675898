"""What a way of writing gains on PostgreSQL: the same paths with it off and on, interleaved.

  .venv/bin/python bench/pgprepare.py [-n 600] [--chunk 40] [--what prepare|events]

--what prepare (the default): statements sent whole, or prepared once per connection (BOSUN_PG_PREPARE).
--what events: each event an arrival stores written at once, or all of them in one INSERT at its end
(sequences/transitions/eventlog.py's together()).

In one process, on one throw-away database (as bench/hotpaths.py --pg), the calls of each path alternate in
chunks between statements sent whole and statements prepared once per connection, so drift on a shared
machine falls on both alike; prints the median per call of each and their ratio.
"""

import argparse
import contextlib
import statistics
import sys
import time
from pathlib import Path

sys.argv.insert(1, "--pg")  # hotpaths makes its database from the command line
sys.path.insert(0, str(Path(__file__).resolve().parent))

import hotpaths  # noqa: E402
from django.conf import settings  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pg", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("-n", type=int, default=600)
    parser.add_argument("--chunk", type=int, default=40)
    parser.add_argument("--what", choices=["prepare", "events"], default="prepare")
    args = parser.parse_args()
    from sequences.transitions import arrivals, eventlog

    def switch(on: bool):
        if args.what == "prepare":
            settings.BOSUN_PG_PREPARE = on
        else:
            arrivals.together = eventlog.together if on else contextlib.nullcontext

    token = hotpaths.setup(0)
    from sequences.configuration import create_service
    from sequences.models import Project

    for i in range(50):  # the lanes a trigger goes to, as hotpaths.py makes them
        create_service(Project.objects.get(name="bench"), f"t{i}")
    off, on = ("sent whole", "prepared") if args.what == "prepare" else ("events one by one", "events together")
    print(f"| path | {off}, p50 ms | {on}, p50 ms | on/off |\n| --- | --- | --- | --- |")
    for path in ("trigger", "started", "handoff", "release", "control"):
        calls = hotpaths.prepare(path, token, args.n)
        for call in calls[:20]:  # warm: connections made, statements compiled (and prepared)
            call()
        took = {False: [], True: []}
        for k, call in enumerate(calls[20:]):
            prepared = (k // args.chunk) % 2 == 1
            switch(prepared)
            started = time.perf_counter()
            call()
            took[prepared].append((time.perf_counter() - started) * 1000)
        whole, prepared = statistics.median(took[False]), statistics.median(took[True])
        print(f"| {path} | {whole:.2f} | {prepared:.2f} | {prepared / whole:.2f} |", flush=True)


if __name__ == "__main__":
    main()
