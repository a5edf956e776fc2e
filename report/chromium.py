"""Open an HTML file in headless Chromium, save a screenshot, collect console errors.

Chromium is driven over the Chrome DevTools Protocol on a pipe
(``--remote-debugging-pipe``: the browser reads commands from fd 3 and writes replies
and events to fd 4, each a JSON message ending in a NUL byte), so no websocket
library and no network port are needed. Errors are read from the protocol's own
events, not from log scraping:

* ``Runtime.consoleAPICalled`` with type ``error`` or ``assert`` (``console.error``);
* ``Runtime.exceptionThrown`` (an uncaught JavaScript exception);
* ``Log.entryAdded`` with level ``error`` (e.g. an image or stylesheet that failed to load).

Command line::

    python -m report.chromium results/report/index.html --screenshot shot.png

exits 1 when the page logged a console error, 2 when Chromium is missing.
"""

from __future__ import annotations

import argparse
import base64
import fcntl
import json
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

#: Executables tried in order (``PERFGRAPH_CHROMIUM`` overrides).
CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-default-apps",
    "--disable-extensions",
    "--disable-sync",
    "--no-first-run",
    "--no-default-browser-check",
    "--hide-scrollbars",
    "--mute-audio",
    "--remote-debugging-pipe",
)


class ChromiumError(RuntimeError):
    """Chromium could not be started or did not answer in time."""


def find_chromium() -> str | None:
    """Path of a Chromium executable, or None."""
    env = os.environ.get("PERFGRAPH_CHROMIUM")
    if env:
        return env if shutil.which(env) or os.path.exists(env) else None
    for name in CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    return None


@dataclass
class PageCheck:
    """What a page did when loaded: its console errors and the screenshot written."""

    url: str
    errors: list[str] = field(default_factory=list)
    console: list[str] = field(default_factory=list)  # every console message, "type: text"
    screenshot: Path | None = None
    width: int = 0
    height: int = 0
    title: str = ""


class _Pipe:
    """A CDP connection over Chromium's debugging pipe."""

    def __init__(self, proc: subprocess.Popen, to_browser: int, from_browser: int) -> None:
        self.proc = proc
        self._out = os.fdopen(to_browser, "wb", buffering=0)
        self._in = os.fdopen(from_browser, "rb", buffering=0)
        self._next_id = 0
        self.messages: queue.Queue = queue.Queue()
        self.events: list[dict] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        buf = b""
        while True:
            try:
                chunk = self._in.read(1 << 16)
            except (OSError, ValueError):  # closed under us
                chunk = b""
            if not chunk:
                self.messages.put(None)
                return
            buf += chunk
            while b"\0" in buf:
                raw, buf = buf.split(b"\0", 1)
                self.messages.put(json.loads(raw))

    def send(self, method: str, params: dict | None = None, session: str | None = None, timeout: float = 30.0) -> dict:
        self._next_id += 1
        msg: dict = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        self._out.write(json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            m = self._get(deadline, f"reply to {method}")
            if m.get("id") == self._next_id:
                if "error" in m:
                    raise ChromiumError(f"{method}: {m['error']}")
                return m.get("result", {})
            self.events.append(m)

    def wait_event(self, method: str, timeout: float) -> dict:
        for e in self.events:
            if e.get("method") == method:
                return e
        deadline = time.monotonic() + timeout
        while True:
            m = self._get(deadline, method)
            self.events.append(m)
            if m.get("method") == method:
                return m

    def drain(self, seconds: float) -> None:
        """Collect events for ``seconds`` more (late console messages)."""
        deadline = time.monotonic() + seconds
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            try:
                m = self.messages.get(timeout=left)
            except queue.Empty:
                return
            if m is None:
                return
            self.events.append(m)

    def _get(self, deadline: float, what: str) -> dict:
        left = deadline - time.monotonic()
        if left <= 0:
            raise ChromiumError(f"timed out waiting for {what}")
        try:
            m = self.messages.get(timeout=left)
        except queue.Empty:
            raise ChromiumError(f"timed out waiting for {what}") from None
        if m is None:
            raise ChromiumError(f"Chromium closed the pipe while waiting for {what} (exit code {self.proc.poll()})")
        return m

    def close(self) -> None:
        """Close the command pipe, let the browser exit, then stop the reader."""
        try:
            self._out.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._reader.join(timeout=5)
        try:
            self._in.close()
        except OSError:
            pass


def _errors_from(events: list[dict]) -> tuple[list[str], list[str]]:
    errors, console = [], []
    for e in events:
        method, p = e.get("method"), e.get("params", {})
        if method == "Runtime.consoleAPICalled":
            text = " ".join(
                str(a.get("value", a.get("description", a.get("type", "")))) for a in p.get("args", [])
            )
            console.append(f"{p.get('type')}: {text}")
            if p.get("type") in ("error", "assert"):
                errors.append(f"console.{p.get('type')}: {text}")
        elif method == "Runtime.exceptionThrown":
            d = p.get("exceptionDetails", {})
            desc = d.get("exception", {}).get("description") or d.get("text", "")
            errors.append(f"uncaught exception: {desc} (line {d.get('lineNumber')})")
        elif method == "Log.entryAdded":
            entry = p.get("entry", {})
            console.append(f"log {entry.get('level')}: {entry.get('text')}")
            if entry.get("level") == "error":
                errors.append(f"log error ({entry.get('source')}): {entry.get('text')} {entry.get('url', '')}".strip())
    return errors, console


def _start_chromium(exe: str, profile: str, width: int) -> tuple[subprocess.Popen, int, int]:
    """Start Chromium with its DevTools pipe; (the process, our command fd, our event fd)."""
    # fd 3: commands to the browser; fd 4: replies and events from it. The child
    # ends are first moved to fds >= 100 (close-on-exec), so that placing them on
    # 3 and 4 cannot clobber one with the other; dup2 makes 3 and 4 inheritable.
    cmd_r, cmd_w = os.pipe()
    ev_r, ev_w = os.pipe()
    hi_r = fcntl.fcntl(cmd_r, fcntl.F_DUPFD_CLOEXEC, 100)
    hi_w = fcntl.fcntl(ev_w, fcntl.F_DUPFD_CLOEXEC, 100)
    os.close(cmd_r)
    os.close(ev_w)

    def _child_fds() -> None:  # runs in the child, before exec
        os.dup2(hi_r, 3)
        os.dup2(hi_w, 4)

    try:
        proc = subprocess.Popen(
            [exe, *FLAGS, f"--user-data-dir={profile}", f"--window-size={width},800"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            close_fds=False,  # keep 3 and 4; every other fd of ours is close-on-exec (PEP 446)
            preexec_fn=_child_fds,
        )
    except OSError as exc:
        for fd in (hi_r, hi_w, cmd_w, ev_r):
            os.close(fd)
        raise ChromiumError(f"cannot start {exe}: {exc}") from None
    os.close(hi_r)
    os.close(hi_w)
    return proc, cmd_w, ev_r


def _load_and_capture(pipe: _Pipe, url: str, result: PageCheck, screenshot, *, width: int, max_height: int,
                      full_page: bool, settle_s: float, timeout_s: float) -> None:
    """Open ``url`` in a new tab, wait for its load event and settle, record its size and
    title in ``result``, and write the screenshot if one is asked for."""
    target = pipe.send("Target.createTarget", {"url": "about:blank"}, timeout=timeout_s)["targetId"]
    session = pipe.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
    for domain in ("Page", "Runtime", "Log"):
        pipe.send(f"{domain}.enable", session=session)
    pipe.send(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": 800, "deviceScaleFactor": 1, "mobile": False},
        session=session,
    )
    pipe.events.clear()
    pipe.send("Page.navigate", {"url": url}, session=session)
    pipe.wait_event("Page.loadEventFired", timeout_s)
    pipe.drain(settle_s)
    metrics = pipe.send("Page.getLayoutMetrics", session=session)
    size = metrics.get("cssContentSize") or metrics.get("contentSize") or {}
    height = int(min(max_height, max(800, size.get("height", 800)))) if full_page else 800
    result.width, result.height = width, height
    title = pipe.send("Runtime.evaluate", {"expression": "document.title"}, session=session)
    result.title = str(title.get("result", {}).get("value", ""))
    if screenshot is not None:
        pipe.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
            session=session,
        )
        shot = pipe.send("Page.captureScreenshot", {"format": "png"}, session=session, timeout=timeout_s)
        out = Path(screenshot)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(base64.b64decode(shot["data"]))
        result.screenshot = out


def check_page(
    html_path: str | os.PathLike,
    screenshot: str | os.PathLike | None = None,
    *,
    width: int = 1280,
    max_height: int = 16000,
    full_page: bool = True,
    settle_s: float = 0.5,
    timeout_s: float = 60.0,
    chromium: str | None = None,
) -> PageCheck:
    """Load ``html_path`` in headless Chromium; return its console errors; save a PNG.

    Args:
        html_path (str): The page (a local file).
        screenshot (str, optional): Where to write a PNG screenshot.
        width (int, optional): Viewport width in CSS pixels. (default: :obj:`1280`)
        max_height (int, optional): Cap of a full-page screenshot's height. (default: :obj:`16000`)
        full_page (bool, optional): Capture the whole page, not only the first screen.
            (default: :obj:`True`)
        settle_s (float, optional): Seconds to keep listening after the load event.
        timeout_s (float, optional): Limit for each protocol step.
        chromium (str, optional): The executable. (default: :func:`find_chromium`)

    Raises:
        ChromiumError: Chromium is missing, did not start or did not answer.
    """
    exe = chromium or find_chromium()
    if exe is None:
        raise ChromiumError("no Chromium executable found (install Debian's `chromium`, or set PERFGRAPH_CHROMIUM)")
    url = Path(html_path).resolve().as_uri()
    result = PageCheck(url=url)
    with tempfile.TemporaryDirectory(prefix="perfgraph-chromium-") as profile:
        proc, cmd_w, ev_r = _start_chromium(exe, profile, width)
        stderr_tail: list[bytes] = []
        threading.Thread(target=lambda: stderr_tail.extend(proc.stderr), daemon=True).start()
        pipe = _Pipe(proc, cmd_w, ev_r)
        try:
            _load_and_capture(pipe, url, result, screenshot, width=width, max_height=max_height, full_page=full_page,
                              settle_s=settle_s, timeout_s=timeout_s)  # fmt: skip
            pipe.drain(0.1)
            result.errors, result.console = _errors_from(pipe.events)
            try:
                pipe.send("Browser.close", timeout=5)
            except ChromiumError:
                pass
        except ChromiumError as exc:
            tail = b"".join(stderr_tail)[-2000:].decode(errors="replace")
            raise ChromiumError(f"{exc}\nChromium stderr (tail):\n{tail}") from None
        finally:
            pipe.close()
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m report.chromium", description=__doc__.split("\n")[0])
    parser.add_argument("html")
    parser.add_argument("--screenshot", default=None, help="PNG to write")
    parser.add_argument("--width", type=int, default=1280)
    args = parser.parse_args(argv)
    try:
        res = check_page(args.html, args.screenshot, width=args.width)
    except ChromiumError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for e in res.errors:
        print(f"console error: {e}", file=sys.stderr)
    print(json.dumps({"url": res.url, "title": res.title, "errors": len(res.errors),
                      "screenshot": str(res.screenshot) if res.screenshot else None,
                      "size": [res.width, res.height]}))
    return 1 if res.errors else 0


if __name__ == "__main__":
    sys.exit(main())
