"""Opening a report in a real headless Chromium: console errors, network requests, images, a screenshot.

Drives Debian's ``chromium`` over the DevTools protocol on a pipe (``--remote-debugging-pipe``: fd 3 in, fd 4
out, NUL-terminated JSON), so it needs nothing beyond the standard library. The set-up step installs the browser
(``.ci/run``: Debian's ``chromium`` from the apt mirror); without it the browser tests skip and say how to get it.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

EXTERNAL = re.compile(r"^(https?|wss?|ftp):", re.I)
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-default-apps", "--disable-extensions", "--hide-scrollbars", "--mute-audio",
    "--disable-dev-shm-usage", "--remote-debugging-pipe",
]


def find_chromium() -> str:
    """The chromium executable on PATH; the test skips, naming the set-up step, when there is none."""
    path = shutil.which("chromium")
    if not path:
        pytest.skip("chromium is not installed: the set-up step installs it (.ci/run: apt-get install -y chromium)")
    return path


@dataclass
class PageCheck:
    """What the browser saw while loading one page."""

    requests: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    images: list[dict[str, Any]] = field(default_factory=list)
    title: str = ""
    height: int = 0
    screenshot: bytes = b""

    @property
    def external_requests(self) -> list[str]:
        """Requests that would leave the machine."""
        return [u for u in self.requests if EXTERNAL.match(u)]

    @property
    def broken_images(self) -> list[dict[str, Any]]:
        """Images that did not load or decode."""
        return [i for i in self.images if not i["complete"] or i["naturalWidth"] == 0]


class _Pipe:
    def __init__(self, chromium: str, profile: str) -> None:
        to_child_r, self._to_child = os.pipe()
        self._from_child, from_child_w = os.pipe()

        def wire() -> None:  # in the child: the protocol wants fds 3 (commands in) and 4 (replies out);
            os.dup2(to_child_r, 3)  # pass_fds=(3, 4) keeps them open past subprocess's close_fds
            os.dup2(from_child_w, 4)

        self.proc = subprocess.Popen(
            [chromium, *FLAGS, f"--user-data-dir={profile}", "about:blank"], preexec_fn=wire,
            pass_fds=(3, 4), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        os.close(to_child_r)
        os.close(from_child_w)
        self._buf = b""
        self._id = 0
        self.events: list[dict[str, Any]] = []

    def send(self, method: str, params: dict[str, Any] | None = None, session: str | None = None,
             timeout: float = 60.0) -> dict[str, Any]:
        self._id += 1
        msg: dict[str, Any] = {"id": self._id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._to_child, json.dumps(msg).encode() + b"\0")
        want = self._id
        deadline = time.monotonic() + timeout
        while True:
            m = self._read(deadline)
            if m.get("id") == want:
                if "error" in m:
                    raise RuntimeError(f"{method}: {m['error']}")
                return m.get("result", {})
            self.events.append(m)

    def wait_event(self, method: str, timeout: float = 60.0) -> dict[str, Any]:
        for m in self.events:
            if m.get("method") == method:
                return m
        deadline = time.monotonic() + timeout
        while True:
            m = self._read(deadline)
            self.events.append(m)
            if m.get("method") == method:
                return m

    def _read(self, deadline: float) -> dict[str, Any]:
        import select

        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("chromium did not answer in time")
            ready, _, _ = select.select([self._from_child], [], [], left)
            if ready:
                chunk = os.read(self._from_child, 1 << 20)
                if not chunk:
                    err = self.proc.stderr.read().decode(errors="replace")[-500:] if self.proc.stderr else ""
                    raise RuntimeError(f"chromium exited: {err}")
                self._buf += chunk
        raw, self._buf = self._buf.split(b"\0", 1)
        return json.loads(raw)

    def close(self) -> None:
        try:
            self.send("Browser.close", timeout=10)
        except (RuntimeError, TimeoutError, OSError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._to_child)
        os.close(self._from_child)


def load(page: Path, width: int = 1280, height: int = 2000, full_page: bool = True,
         timeout: float = 90.0) -> PageCheck:
    """Open ``page`` (a local file) in headless Chromium, record requests, console errors and images, and
    take a screenshot (the whole page when ``full_page``)."""
    chromium = find_chromium()
    with tempfile.TemporaryDirectory(prefix="hfp-chromium-") as profile:
        pipe = _Pipe(chromium, profile)
        try:
            target = pipe.send("Target.createTarget", {"url": "about:blank"}, timeout=timeout)["targetId"]
            session = pipe.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
            for domain in ("Page", "Network", "Runtime", "Log"):
                pipe.send(f"{domain}.enable", session=session)
            pipe.send("Emulation.setDeviceMetricsOverride",
                      {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False}, session=session)
            pipe.send("Page.navigate", {"url": page.resolve().as_uri()}, session=session, timeout=timeout)
            pipe.wait_event("Page.loadEventFired", timeout=timeout)
            check = PageCheck()
            probe = ("JSON.stringify({title: document.title, height: document.documentElement.scrollHeight, "
                     "images: [...document.images].map(i => ({src: i.src.slice(0, 40), complete: i.complete, "
                     "naturalWidth: i.naturalWidth}))})")
            value = json.loads(pipe.send("Runtime.evaluate", {"expression": probe, "returnByValue": True},
                                         session=session)["result"]["value"])
            check.title, check.height, check.images = value["title"], value["height"], value["images"]
            params: dict[str, Any] = {"format": "png"}
            if full_page:
                params.update(captureBeyondViewport=True,
                              clip={"x": 0, "y": 0, "width": width, "height": check.height, "scale": 1})
            shot = pipe.send("Page.captureScreenshot", params, session=session, timeout=timeout)
            check.screenshot = base64.b64decode(shot["data"])
            for m in pipe.events:
                method, p = m.get("method"), m.get("params", {})
                if method == "Network.requestWillBeSent":
                    check.requests.append(p["request"]["url"][:200])
                elif method == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                    check.console_errors.append(" ".join(str(a.get("value", a.get("description")))
                                                         for a in p.get("args", [])))
                elif method == "Runtime.exceptionThrown":
                    check.console_errors.append(str(p.get("exceptionDetails", {}).get("text")))
                elif method == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
                    check.console_errors.append(f"{p['entry'].get('source')}: {p['entry'].get('text')}")
            return check
        finally:
            pipe.close()


class _Resources(HTMLParser):
    """Collects the URLs an HTML page would fetch (src, href of link/script, srcset, url() in styles)."""

    def __init__(self) -> None:
        super().__init__()
        self.resources: list[tuple[str, str, str]] = []
        self.anchors: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "a" and "href" in a:
            self.anchors.append(a["href"])
        for key in ("src", "srcset", "poster", "data", "background"):
            if key in a:
                self.resources.append((tag, key, a[key]))
        if tag in ("link", "base", "use", "image", "iframe", "embed", "object") and "href" in a:
            self.resources.append((tag, "href", a["href"]))
        if "style" in a:
            self.resources += [(tag, "style", u) for u in re.findall(r"url\(([^)]*)\)", a["style"])]


def static_problems(html: str) -> list[str]:
    """Reasons an HTML file is not self-contained: a resource from the network, an <img> that is not a data:
    URI, a stylesheet or script loaded from elsewhere. Plain anchors to other pages are allowed."""
    parser = _Resources()
    parser.feed(html)
    problems = []
    for tag, key, url in parser.resources:
        if tag == "img" and key == "src" and not url.startswith("data:image/"):
            problems.append(f"<img src={url[:60]!r}> is not an embedded data: URI")
        elif not url.startswith(("data:", "#")):
            problems.append(f"<{tag} {key}={url[:60]!r}> loads a resource")
    for u in re.findall(r"url\(([^)]*)\)", " ".join(re.findall(r"<style[^>]*>(.*?)</style>", html, re.S))):
        if not u.strip("'\" ").startswith("data:"):
            problems.append(f"stylesheet url({u[:60]}) loads a resource")
    if re.search(r"@import", html):
        problems.append("stylesheet @import loads a resource")
    if re.search(r"<script\b", html, re.I):
        problems.append("the page has a <script>")
    return problems
