"""The dashboard tests' program: says a text, sleeps, exits with the code it is given.

    prog.py --exit 3 --sleep 0.5 --fail-attempts 2 --say "<script>alert(1)</script>"

``--fail-attempts N`` exits 1 on attempts 1..N (``FANOUT_ATTEMPT``) and ``--exit`` after.
Its last log line is ``attempt N: exit CODE``. With ``PROG_STARTED_DIR`` set, it leaves a
file there as it starts, so a test can wait for its tasks to be running.
"""

from __future__ import annotations

import argparse
import os
import sys
import time


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--exit", type=int, default=0)
    parser.add_argument("--sleep", type=float, default=0.0)
    parser.add_argument("--fail-attempts", type=int, default=0)
    parser.add_argument("--say", default="")
    args = parser.parse_args()
    attempt = int(os.environ.get("FANOUT_ATTEMPT", "1"))
    started = os.environ.get("PROG_STARTED_DIR")
    if started:
        name = "{}-{}-{}".format(os.environ.get("FANOUT_RUN_ID", "run"),
                                 os.environ.get("FANOUT_ITEM_INDEX", "0"), attempt)
        with open(os.path.join(started, name), "w") as f:
            f.write(str(os.getpid()))
    print(f"says: {args.say}", flush=True)
    time.sleep(args.sleep)
    code = 1 if attempt <= args.fail_attempts else args.exit
    print(f"attempt {attempt}: exit {code}", file=sys.stderr, flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
