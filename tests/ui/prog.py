"""The dashboard tests' program: says a text, sleeps, exits with the code it is given.

    prog.py --exit 3 --sleep 0.5 --fail-attempts 2 --say "<script>alert(1)</script>"

``--fail-attempts N`` exits 1 on attempts 1..N (``FANOUT_ATTEMPT``) and ``--exit`` after.
Its last log line is ``attempt N: exit CODE``.
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
    print(f"says: {args.say}", flush=True)
    time.sleep(args.sleep)
    code = 1 if attempt <= args.fail_attempts else args.exit
    print(f"attempt {attempt}: exit {code}", file=sys.stderr, flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
