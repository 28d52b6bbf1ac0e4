"""Drive a headless Chromium over the DevTools protocol, with no library and no download.

Chromium's ``--remote-debugging-pipe`` speaks the DevTools protocol over file descriptors
3 (commands in) and 4 (replies and events out), as NUL-terminated JSON messages, so no
WebSocket client is needed: only Debian's ``chromium`` package (``apt-get install
chromium``). Used by ``tests/serve/test_browser.py`` (the search page, typed into like a
user would) and by ``benchmarks/serve_load.py --screenshot`` (the README's screenshot).

Example::

    with HeadlessChromium() as browser:
        browser.open("http://127.0.0.1:8000/")
        browser.type_text("heart attack")
        browser.press_enter()
        browser.wait_for("document.querySelector('#rows td.id')?.textContent")
        browser.screenshot("page.png")
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from typing_extensions import Self

EXECUTABLES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_chromium() -> str | None:
    """The path of an installed Chromium (``$CHROMIUM`` first), or None."""
    candidates = ([os.environ["CHROMIUM"]] if os.environ.get("CHROMIUM") else []) + list(
        EXECUTABLES)
    for name in candidates:
        path = shutil.which(name)
        if path:
            return path
    return None


class BrowserError(RuntimeError):
    """The browser failed, answered with an error, or did not answer in time."""


class HeadlessChromium:
    """One headless Chromium process and one page, driven over a DevTools pipe.

    Args:
        executable: Chromium's path (default: :func:`find_chromium`).
        width, height: The page's viewport in CSS pixels (390 x 844 is a phone).
        timeout_s: How long any one step may take.
    """

    def __init__(self, executable: str | None = None, width: int = 1200, height: int = 800,
                 timeout_s: float = 30.0) -> None:
        self.executable = executable or find_chromium()
        if self.executable is None:
            raise BrowserError("no chromium found on PATH; install it (Debian: apt-get install "
                               "chromium) or set $CHROMIUM")
        self.width, self.height, self.timeout_s = width, height, timeout_s
        self._next_id = 0
        self._buffer = b""
        self._events: list[dict[str, Any]] = []
        self._session: str | None = None
        self._process: subprocess.Popen | None = None

    # ------------------------------------------------------------------ process

    def __enter__(self) -> Self:
        self._profile = tempfile.TemporaryDirectory(prefix="sapbert-st-chromium-")
        to_browser, self._to_browser = self._high_pipe()
        self._from_browser, from_browser = self._high_pipe()
        arguments = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--no-first-run", "--no-default-browser-check", "--disable-extensions",
                     "--disable-background-networking", "--disable-sync", "--mute-audio",
                     "--remote-debugging-pipe", f"--user-data-dir={self._profile.name}",
                     f"--window-size={self.width},{self.height}", "about:blank"]
        # bash (dash refuses fds above 9) puts the pipe ends on fds 3 and 4, where Chromium
        # expects them, without a preexec_fn (unsafe when the caller runs threads)
        script = f'exec "$0" "$@" 3<&{to_browser} 4>&{from_browser}'
        self._log = tempfile.TemporaryFile()
        self._process = subprocess.Popen(["bash", "-c", script, self.executable, *arguments],
                                         pass_fds=(to_browser, from_browser),
                                         stdin=subprocess.DEVNULL, stdout=self._log,
                                         stderr=subprocess.STDOUT)
        os.close(to_browser)
        os.close(from_browser)
        try:
            target = self.send("Target.createTarget", {"url": "about:blank"}, session=False)
            self._session = self.send("Target.attachToTarget", {
                "targetId": target["targetId"], "flatten": True}, session=False)["sessionId"]
            self.send("Page.enable")
            self.send("Runtime.enable")
            self.set_viewport(self.width, self.height)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    @staticmethod
    def _high_pipe() -> tuple[int, int]:
        """A pipe whose ends are fds >= 10 (so the shell's ``3<&N 4>&M`` cannot clash)."""
        read, write = os.pipe()
        high = (fcntl.fcntl(read, fcntl.F_DUPFD_CLOEXEC, 10),
                fcntl.fcntl(write, fcntl.F_DUPFD_CLOEXEC, 10))
        os.close(read)
        os.close(write)
        return high

    def __exit__(self, *exc_info) -> None:
        if self._process is not None:
            try:
                if self._process.poll() is None:
                    self.send("Browser.close", session=False, timeout_s=5)
            except (BrowserError, OSError):
                pass
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=10)
            self._process = None
        for fd in ("_to_browser", "_from_browser"):
            if getattr(self, fd, None) is not None:
                os.close(getattr(self, fd))
                setattr(self, fd, None)
        self._log.close()
        self._profile.cleanup()

    def browser_log(self) -> str:
        """What Chromium wrote on stdout and stderr so far (for error messages)."""
        self._log.seek(0)
        return self._log.read().decode("utf-8", "replace")[-4000:]

    # ------------------------------------------------------------------ protocol

    def send(self, method: str, params: dict[str, Any] | None = None, *, session: bool = True,
             timeout_s: float | None = None) -> dict[str, Any]:
        """Send one command and return its result (events that arrive meanwhile are kept)."""
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method,
                                   "params": params or {}}
        if session:
            message["sessionId"] = self._session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + (timeout_s or self.timeout_s)
        while True:
            reply = self._receive(deadline, method)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise BrowserError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self._events.append(reply)

    def _receive(self, deadline: float, waiting_for: str) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise BrowserError(f"{waiting_for}: no answer within the timeout")
            ready, _, _ = select.select([self._from_browser], [], [], remaining)
            if ready:
                chunk = os.read(self._from_browser, 1 << 20)
                if not chunk:
                    raise BrowserError(f"{waiting_for}: chromium exited; its log:\n"
                                       f"{self.browser_log()}")
                self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def wait_event(self, method: str) -> dict[str, Any]:
        """The first event ``method`` received (waiting for it if needed)."""
        deadline = time.monotonic() + self.timeout_s
        while True:
            for i, event in enumerate(self._events):
                if event.get("method") == method:
                    return self._events.pop(i)
            self._events.append(self._receive(deadline, method))

    # ------------------------------------------------------------------ page

    def set_viewport(self, width: int, height: int) -> None:
        self.send("Emulation.setDeviceMetricsOverride", {
            "width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600})

    def open(self, url: str) -> None:
        """Navigate and wait for the load event."""
        self._events = [e for e in self._events if e.get("method") != "Page.loadEventFired"]
        result = self.send("Page.navigate", {"url": url})
        if result.get("errorText"):
            raise BrowserError(f"Page.navigate {url}: {result['errorText']}")
        self.wait_event("Page.loadEventFired")

    def evaluate(self, expression: str) -> Any:
        """The JSON value of a JavaScript expression in the page (awaited if a promise)."""
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                                "awaitPromise": True})
        if "exceptionDetails" in result:
            raise BrowserError(f"{expression}: {result['exceptionDetails'].get('text')} "
                               f"{result['exceptionDetails'].get('exception', {})}")
        return result.get("result", {}).get("value")

    def wait_for(self, expression: str, timeout_s: float | None = None) -> Any:
        """Poll ``expression`` until it is truthy; its value."""
        deadline = time.monotonic() + (timeout_s or self.timeout_s)
        while True:
            value = self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise BrowserError(f"{expression}: still {value!r} after the timeout")
            time.sleep(0.05)

    def type_text(self, text: str) -> None:
        """Type ``text`` into the focused element, one key press per character."""
        for char in text:
            self.send("Input.dispatchKeyEvent", {"type": "keyDown", "text": char, "key": char,
                                                 "unmodifiedText": char})
            self.send("Input.dispatchKeyEvent", {"type": "keyUp", "key": char})

    def press(self, key: str, code: int) -> None:
        """Press a named key (``"Enter"``, 13; ``"ArrowDown"``, 40; ``"Escape"``, 27)."""
        down = {"type": "rawKeyDown", "key": key, "code": key, "windowsVirtualKeyCode": code,
                "nativeVirtualKeyCode": code}
        if key == "Enter":
            down.update(type="keyDown", text="\r")
        self.send("Input.dispatchKeyEvent", down)
        self.send("Input.dispatchKeyEvent", {"type": "keyUp", "key": key, "code": key,
                                             "windowsVirtualKeyCode": code,
                                             "nativeVirtualKeyCode": code})

    def press_enter(self) -> None:
        self.press("Enter", 13)

    def dom(self) -> str:
        """The page's current DOM as HTML."""
        return self.evaluate("document.documentElement.outerHTML")

    def screenshot(self, path: str | os.PathLike, full_page: bool = True) -> Path:
        """Save a PNG of the page (the whole page, or the viewport)."""
        params: dict[str, Any] = {"format": "png"}
        if full_page:
            size = self.evaluate("[document.documentElement.scrollWidth, "
                                 "document.documentElement.scrollHeight]")
            params.update(captureBeyondViewport=True, clip={
                "x": 0, "y": 0, "width": size[0], "height": size[1], "scale": 1})
        data = base64.b64decode(self.send("Page.captureScreenshot", params)["data"])
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return path
