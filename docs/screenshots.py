"""The README's pictures of the dashboard, taken from a real local run (``make screenshots``).

Runs the analyzer over 2015..2019 x three regions locally (one item given a year the
program refuses, so the run has a failure to show), serves the records with ``fanout ui``'s
app on loopback, and has Debian's Chromium take the run page and the failed item's page:

    .venv/bin/python docs/screenshots.py      # writes docs/images/run-page.png, item-page.png
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

DOCS = Path(__file__).resolve().parent
REPO = DOCS.parent
IMAGES = DOCS / "images"
RUN_ID = "analyzer-screenshot"

SPEC = {
    "job": "analyzer",
    "params": {"year": {"range": {"start": 2012, "stop": 2020}},
               "region": ["us", "eu", "apac"]},
    "include": [{"year": "20l9", "region": "eu"}],
    "command": ["-y", "{year}", "--region", "{region}"],
    "environment": {"REGION": "{region}"},
    "max_concurrency": 6,
    "retry": {"max_attempts": 2, "delay_seconds": 1},
}


def main() -> int:
    sys.path.insert(0, str(REPO))
    from playwright.sync_api import sync_playwright

    from fanout.ui.local_runs import open_local
    from fanout.ui.server import Background

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        print("docs/screenshots.py: no Chromium (apt-get install chromium)", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="fanout-screenshots-"))
    try:
        records = work / "runs"
        spec = work / "spec.json"
        spec.write_text(json.dumps(SPEC))
        subprocess.run([sys.executable, "-m", "fanout.cli", "local", str(spec), "--run-id",
                        RUN_ID, "--records-dir", str(records), "--json"], cwd=REPO,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        source = open_local(records, REPO / "cdk.json")
        failed = next(i["index"] for i in source.list_items(RUN_ID) if i["status"] == "FAILED")
        IMAGES.mkdir(exist_ok=True)
        with Background(source, REPO / "cdk.json") as server, sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.goto(f"{server.url}/runs/{RUN_ID}")
            page.wait_for_selector("#timeline svg")
            page.screenshot(path=str(IMAGES / "run-page.png"), full_page=True)
            page.goto(f"{server.url}/runs/{RUN_ID}/items/{failed}")
            page.wait_for_function(
                "() => !document.querySelector('details[open] pre.log')"
                ".textContent.includes('loading')")
            page.screenshot(path=str(IMAGES / "item-page.png"), full_page=True)
            browser.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"wrote {IMAGES / 'run-page.png'} and {IMAGES / 'item-page.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
