"""A test program for the local mode: exits with the code it is given, after a while.

    prog.py --exit 3 --sleep 0.5 --fail-attempts 2 [--say "FATAL: giving up"]

``--fail-attempts N`` exits 1 on attempts 1..N (``FANOUT_ATTEMPT``) and ``--exit`` after.
With ``PROG_PID_DIR`` set, it writes its pid there first (``<run>-<index>-<attempt>.pid``),
so a test can check that no process outlives its task. With ``PROG_ENV_DIR`` set, it
writes its whole environment there as JSON (``<run>-<index>-<attempt>.json``). With
``PROG_PASS_FILE`` set to a file that exists, it exits 0 whatever it was told (a fix made
before a rerun).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--exit", type=int, default=0)
    parser.add_argument("--sleep", type=float, default=0.0)
    parser.add_argument("--fail-attempts", type=int, default=0)
    parser.add_argument("--say", default="", help="a last line for stderr when it fails")
    args = parser.parse_args()
    attempt = int(os.environ.get("FANOUT_ATTEMPT", "1"))
    pid_dir = os.environ.get("PROG_PID_DIR")
    if pid_dir:
        name = "{}-{}-{}.pid".format(os.environ.get("FANOUT_RUN_ID", "run"),
                                     os.environ.get("FANOUT_ITEM_INDEX", "0"), attempt)
        with open(os.path.join(pid_dir, name), "w") as f:
            f.write(str(os.getpid()))
    env_dir = os.environ.get("PROG_ENV_DIR")
    if env_dir:
        name = "{}-{}-{}.json".format(os.environ.get("FANOUT_RUN_ID", "run"),
                                      os.environ.get("FANOUT_ITEM_INDEX", "0"), attempt)
        with open(os.path.join(env_dir, name), "w") as f:
            json.dump(dict(os.environ), f)
    print(f"attempt {attempt}: sleeping {args.sleep}s", flush=True)
    time.sleep(args.sleep)
    code = 1 if attempt <= args.fail_attempts else args.exit
    if os.path.exists(os.environ.get("PROG_PASS_FILE") or "/nonexistent/pass"):
        code = 0
    print(f"attempt {attempt}: exit {code}", file=sys.stderr, flush=True)
    if code and args.say:
        print(args.say, file=sys.stderr, flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
