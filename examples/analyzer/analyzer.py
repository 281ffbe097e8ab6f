"""Portfolio analyzer: the sample job that fanout runs once per year (and region).

Simulates importing a user's portfolio, analyzing one year of it and exporting the
results, printing each step. ``--work-seconds`` is how long the analysis takes. The
results go to ``result.json`` in the item's ``FANOUT_OUTPUT`` (a folder locally, an S3
prefix on AWS, written with boto3), where ``fanout outputs`` finds them.
Exit codes: 0 done, 2 bad arguments (e.g. a year that is not an integer).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Portfolio Analyzer",
        epilog="Analyzes a user's financial portfolio for a given year",
    )
    parser.add_argument("-y", "--year", required=True, help="year to analyze (an integer)")
    parser.add_argument("--region", default=None, help="market region to analyze (optional)")
    parser.add_argument(
        "--work-seconds", type=float, default=0.2,
        help="how long the simulated analysis takes (default 0.2)",
    )
    args = parser.parse_args(argv)
    try:
        args.year = int(args.year)
    except ValueError:
        parser.error(f"argument -y/--year: {args.year!r} is not an integer year")
    if args.work_seconds < 0:
        parser.error("argument --work-seconds: must not be negative")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    where = f" in region {args.region}" if args.region else ""
    run = os.environ.get("FANOUT_RUN_ID", "-")
    item = os.environ.get("FANOUT_ITEM_INDEX", "-")
    attempt = os.environ.get("FANOUT_ATTEMPT", "-")
    print(f"run {run} item {item} attempt {attempt}", flush=True)
    print("Importing user's portfolio...", flush=True)
    print("Import complete...", flush=True)
    print(f"Analyzing portfolio for year: {args.year}{where}", flush=True)
    time.sleep(args.work_seconds)  # the simulated analysis itself
    print("Preparing results", flush=True)
    print("Exporting results...", flush=True)
    export({"year": args.year, "region": args.region, "run": run, "item": item})
    print(f"Results for year {args.year}{where} exported to database.", flush=True)
    return 0


def export(result: dict[str, object]) -> None:
    """Write the results into the item's own location (FANOUT_OUTPUT), if it has one."""
    location = os.environ.get("FANOUT_OUTPUT")
    if not location:
        return
    body = json.dumps(result, indent=2).encode()
    if location.startswith("s3://"):
        import boto3  # the image installs it; only S3 needs it

        bucket, _, prefix = location.removeprefix("s3://").partition("/")
        boto3.client("s3").put_object(Bucket=bucket, Key=prefix + "result.json", Body=body)
    else:
        with open(os.path.join(location, "result.json"), "wb") as out:
            out.write(body)
    print(f"Results written to {location}result.json", flush=True)


if __name__ == "__main__":
    sys.exit(main())
