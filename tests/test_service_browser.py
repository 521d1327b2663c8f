"""The page in a real browser: Playwright driving Debian's Chromium against a real server
(``tests/service_server.py``, tiny encoder). Uploads bundled images, runs a one-pass method
(AdaIN) and a short optimization (Gatys), waits for each result through the page and checks
the downloaded image; checks labels, keyboard use and a phone-sized viewport; saves a
screenshot (to ``$BRUSHWORK_SCREENSHOT`` too when set, e.g. docs/web.png).

Skipped, saying why, when Playwright or Chromium is missing (``make test`` installs
Chromium with apt where apt works; Playwright's own browser download needs the internet).
"""

from __future__ import annotations

import io
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image
from servicekit import LiveServer, live_server

CHROMIUM = Path(os.environ.get("BRUSHWORK_CHROMIUM", "/usr/bin/chromium"))
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

sync_api = pytest.importorskip(
    "playwright.sync_api", reason="playwright is not installed (pip install -e '.[dev]')"
)
pytestmark = pytest.mark.skipif(
    not CHROMIUM.is_file(),
    reason=f"Chromium not found at {CHROMIUM}: `apt-get install -y chromium` (make test runs "
    "it where apt works; Playwright's own browser download needs the internet)",
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    data = tmp_path_factory.mktemp("browser") / "data"
    # the page follows every job it starts; each starts once followed (see
    # servicekit.start_when_followed), so that the page sees its progress and previews
    with live_server(data, "--workers", "1", "--preview-every", "1", "--start-when-followed") as s:
        yield s


@pytest.fixture
def page(tmp_path: Path) -> Iterator[object]:
    profile = tmp_path / "profile"
    profile.mkdir()
    with sync_api.sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile),
            executable_path=str(CHROMIUM),
            headless=True,
            args=ARGS,
            accept_downloads=True,
            viewport={"width": 1100, "height": 1400},
        )
        page = context.pages[0] if context.pages else context.new_page()
        violations: list[str] = []
        page.on(
            "console",
            lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None,
        )
        try:
            yield page
            assert not violations, f"the page broke its own CSP: {violations}"
        finally:
            context.close()


def wait_until(page: object, expression: str, timeout: float = 30.0) -> None:
    """Poll ``expression`` until true. Playwright's ``wait_for_function`` evaluates its
    predicate with ``eval`` inside the page, which the page's CSP (rightly) forbids;
    ``evaluate`` goes through the debugging protocol, which the CSP does not govern."""
    deadline = time.monotonic() + timeout
    while not page.evaluate(expression):  # type: ignore[attr-defined]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for: {expression}")
        time.sleep(0.1)


def downloaded_image(page: object, tmp_path: Path, name: str) -> Image.Image:
    with page.expect_download() as info:  # type: ignore[attr-defined]
        page.click("#download")  # type: ignore[attr-defined]
    target = tmp_path / name
    info.value.save_as(target)
    image = Image.open(io.BytesIO(target.read_bytes()))
    assert image.format == "PNG"
    return image


def test_the_page_paints(server: LiveServer, page: object, tmp_path: Path) -> None:
    from brushwork.examples import content_image, style_path

    photo = content_image("astronaut")
    photo.thumbnail((80, 80))
    photo.save(tmp_path / "astronaut.png")
    p = page  # Playwright's Page
    p.goto(server.url + "/")  # type: ignore[attr-defined]
    p.wait_for_selector("body[data-ready=true]", timeout=30_000)  # type: ignore[attr-defined]

    # every control has a label
    unlabelled = p.evaluate(  # type: ignore[attr-defined]
        "[...document.querySelectorAll('input, select')].filter(e => !e.labels || "
        "!e.labels.length).map(e => e.id)"
    )
    assert unlabelled == []

    # 1. upload the photo and a bundled style; 2. pick AdaIN with the tiny decoder
    p.set_input_files("#content-file", str(tmp_path / "astronaut.png"))  # type: ignore
    p.set_input_files("#style-file", str(style_path("strokes")))  # type: ignore
    p.select_option("#method", "adain")  # type: ignore[attr-defined]
    p.select_option("#opt-model", "tiny")  # type: ignore[attr-defined]
    p.fill("#opt-size", "64")  # type: ignore[attr-defined]
    p.click("#start")  # type: ignore[attr-defined]
    p.wait_for_selector("#job[data-state=done]", timeout=60_000)  # type: ignore
    first = p.get_attribute("#job", "data-id")  # type: ignore[attr-defined]
    assert downloaded_image(p, tmp_path, "adain.png").size == (64, 64)

    # 3. a short Gatys run, started from the keyboard, with a live preview
    p.select_option("#method", "gatys")  # type: ignore[attr-defined]
    p.fill("#opt-iterations", "40")  # type: ignore[attr-defined]
    p.fill("#opt-size", "48")  # type: ignore[attr-defined]
    p.focus("#start")  # type: ignore[attr-defined]
    p.keyboard.press("Enter")  # type: ignore[attr-defined]
    wait_until(
        p,
        f"document.querySelector('#job').dataset.id !== '{first}' && "
        "document.querySelector('#job').dataset.state === 'done'",
        timeout=60,
    )
    assert downloaded_image(p, tmp_path, "gatys.png").size == (48, 48)
    assert p.get_attribute("#canvas", "src").startswith("blob:")  # type: ignore
    # the live preview was shown while it painted (a JPEG of some step), then the result
    shown = p.get_attribute("#canvas", "data-preview-step")  # type: ignore[attr-defined]
    assert shown is not None and 1 <= int(shown) <= 40, shown
    assert p.eval_on_selector("#progress", "e => e.value === e.max")  # type: ignore

    # an example style from the keyboard: the example buttons are reachable and work
    p.focus("#style-examples button[data-example=mosaic]")  # type: ignore[attr-defined]
    p.keyboard.press("Enter")  # type: ignore[attr-defined]
    wait_until(p, "document.querySelectorAll('#style-list li').length === 2")

    # the history of this browser's jobs
    assert p.locator("#history li").count() == 2  # type: ignore[attr-defined]
    p.screenshot(path=str(tmp_path / "web.png"), full_page=True)  # type: ignore
    target = os.environ.get("BRUSHWORK_SCREENSHOT")
    if target:
        shutil.copyfile(tmp_path / "web.png", target)

    # phone-sized: one column, nothing wider than the screen
    p.set_viewport_size({"width": 390, "height": 844})  # type: ignore[attr-defined]
    assert p.evaluate(  # type: ignore[attr-defined]
        "document.documentElement.scrollWidth <= window.innerWidth"
    )


def test_the_page_shows_errors(server: LiveServer, page: object, tmp_path: Path) -> None:
    (tmp_path / "not-an-image.png").write_bytes(b"plain text")
    p = page
    p.goto(server.url + "/")  # type: ignore[attr-defined]
    p.wait_for_selector("body[data-ready=true]", timeout=30_000)  # type: ignore[attr-defined]
    p.set_input_files("#content-file", str(tmp_path / "not-an-image.png"))  # type: ignore
    p.click("#style-examples button[data-example=strokes]")  # type: ignore[attr-defined]
    wait_until(p, "document.querySelectorAll('#style-list li').length === 1")
    p.select_option("#method", "adain")  # type: ignore[attr-defined]
    p.select_option("#opt-model", "tiny")  # type: ignore[attr-defined]
    p.click("#start")  # type: ignore[attr-defined]
    wait_until(p, "document.querySelector('#form-status').textContent.includes('not an image')")
    assert "error" in p.get_attribute("#form-status", "class")  # type: ignore


def test_the_page_cancels(server: LiveServer, page: object, tmp_path: Path) -> None:
    from brushwork.examples import style_path

    Image.new("RGB", (48, 40), (90, 140, 200)).save(tmp_path / "photo.png")
    p = page
    p.goto(server.url + "/")  # type: ignore[attr-defined]
    p.wait_for_selector("body[data-ready=true]", timeout=30_000)  # type: ignore[attr-defined]
    p.set_input_files("#content-file", str(tmp_path / "photo.png"))  # type: ignore
    p.set_input_files("#style-file", str(style_path("strokes")))  # type: ignore
    p.select_option("#method", "gatys")  # type: ignore[attr-defined]
    p.fill("#opt-iterations", "100000")  # type: ignore[attr-defined]
    p.fill("#opt-size", "32")  # type: ignore[attr-defined]
    p.click("#start")  # type: ignore[attr-defined]
    p.wait_for_selector("#job[data-state=running]", timeout=60_000)  # type: ignore
    job = p.get_attribute("#job", "data-id")  # type: ignore[attr-defined]
    p.click("#cancel")  # type: ignore[attr-defined]
    p.wait_for_selector("#job[data-state=cancelled]", timeout=60_000)  # type: ignore
    assert p.is_disabled("#cancel")  # type: ignore[attr-defined]
    assert "cancelled" in p.text_content("#history")  # type: ignore[attr-defined]
    with server.client() as client:
        assert client.get(f"/jobs/{job}").json()["state"] == "cancelled"


def test_the_page_paints_a_video(server: LiveServer, page: object, tmp_path: Path) -> None:
    pytest.importorskip("av", reason="video jobs need PyAV")
    from videoclips import pan, read_clip, write_clip

    from brushwork.examples import style_path

    clip = write_clip(tmp_path / "clip.mp4", pan(6, 32, 48, shift=2))
    p = page
    p.goto(server.url + "/")  # type: ignore[attr-defined]
    p.wait_for_selector("body[data-ready=true]", timeout=30_000)  # type: ignore[attr-defined]
    assert "video/*" in p.get_attribute("#content-file", "accept")  # type: ignore
    p.set_input_files("#content-file", str(clip))  # type: ignore[attr-defined]
    assert p.is_visible("#content-clip") and not p.is_visible("#content-thumb")  # type: ignore
    p.set_input_files("#style-file", str(style_path("strokes")))  # type: ignore
    p.select_option("#method", "adain")  # type: ignore[attr-defined]
    p.select_option("#opt-model", "tiny")  # type: ignore[attr-defined]
    p.fill("#opt-size", "48")  # type: ignore[attr-defined]
    p.click("#start")  # type: ignore[attr-defined]
    p.wait_for_selector("#job[data-state=done]", timeout=60_000)  # type: ignore
    assert p.get_attribute("#result-video", "src").startswith("blob:")  # type: ignore
    assert p.is_visible("#result-video") and not p.is_visible("#canvas")  # type: ignore
    with p.expect_download() as info:  # type: ignore[attr-defined]
        p.click("#download")  # type: ignore[attr-defined]
    assert info.value.suggested_filename.endswith(".mp4")
    target = tmp_path / "result.mp4"
    info.value.save_as(target)
    assert len(read_clip(target)[0]) == 6
