"""The report in a real browser: headless Debian chromium (scripts/setup_chromium.sh installs it).

Checks that the page logs no console message (error or otherwise: the report has no
script, so any message is a problem), that the rendered DOM holds one element of
class ``card`` per violation, and saves a screenshot into the test's tmp dir.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from html.parser import HTMLParser
from pathlib import Path

import pytest

from changedetect.report import write_report
from changedetect.testing import make_stack, make_violations

pytestmark = pytest.mark.browser

FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-default-apps", "--mute-audio",
]


def _chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        exe = shutil.which(name)
        if exe:
            return exe
    pytest.skip("chromium is absent: run scripts/setup_chromium.sh (Debian: apt-get install chromium)")


def _run(exe: str, *args: str) -> subprocess.CompletedProcess[str]:
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run(
            [exe, *FLAGS, f"--user-data-dir={profile}", *args],
            capture_output=True, text=True, timeout=120, check=False,
        )


class _CardCounter(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.cards = 0
        self.images = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        classes = (dict(attrs).get("class") or "").split()
        self.cards += "card" in classes
        self.images += tag == "img"


def test_report_in_headless_chromium(tmp_path: Path) -> None:
    exe = _chromium()
    stack = make_stack(n_dates=3, size=128, seed=2)
    violations = make_violations(stack, n=7)  # one of them 'permitted': no card
    violations["address"] = "Số 12 Đường Nguyễn Thị Minh Khai, Phường Đa Kao, Quận 1"
    expected = int((violations["status"] != "permitted").sum())
    report = write_report(violations, out_path=tmp_path / "report.html", stack=stack,
                          run_info={"model": "test", "before": "2024-01-15", "after": "2024-05-14"})
    url = report.resolve().as_uri()

    dom = _run(exe, "--enable-logging=stderr", "--v=0", "--dump-dom", url)
    assert dom.returncode == 0, dom.stderr[-2000:]
    console = [line for line in dom.stderr.splitlines() if ":CONSOLE" in line]
    assert console == [], "console messages:\n" + "\n".join(console)
    counter = _CardCounter()
    counter.feed(dom.stdout)
    assert counter.cards == expected
    assert counter.images == 1 + 2 * expected
    assert "Nguyễn Thị Minh Khai" in dom.stdout  # UTF-8 survives the browser

    shot = tmp_path / "report.png"
    result = _run(exe, "--window-size=1200,1800", "--hide-scrollbars", f"--screenshot={shot}", url)
    assert result.returncode == 0, result.stderr[-2000:]
    assert shot.is_file() and shot.stat().st_size > 10_000
