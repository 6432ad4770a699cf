"""Headless Chromium driven over the DevTools protocol: open a page as a logged-in person, wait for it to
settle, read what it shows and take a screenshot. Uses Debian's ``chromium`` and the ``websockets`` client
already in the environment (no browser download, no driver binary).
"""

from __future__ import annotations

import base64
import itertools
import json
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import requests
from websockets.sync.client import connect

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


class Browser:
    def __init__(self, width: int = 1400, height: int = 2200):
        if CHROMIUM is None:
            raise RuntimeError("headless Chromium (Debian package 'chromium') is not installed")
        self._profile = tempfile.TemporaryDirectory(prefix="chiso-chromium-")
        self.width, self.height = width, height
        self._process = subprocess.Popen(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--hide-scrollbars",
             "--disable-dev-shm-usage", "--remote-debugging-port=0", f"--user-data-dir={self._profile.name}",
             f"--window-size={width},{height}", "--lang=vi-VN", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        endpoint = None
        deadline = time.monotonic() + 60
        while endpoint is None and time.monotonic() < deadline:
            line = self._process.stderr.readline()
            if found := re.search(r"DevTools listening on (ws://\S+)", line):
                endpoint = found.group(1)
            elif not line and self._process.poll() is not None:
                break
        if endpoint is None:
            self.close()
            raise RuntimeError("Chromium did not open its DevTools endpoint")
        port = int(re.search(r":(\d+)/", endpoint).group(1))
        page = next(t for t in requests.get(f"http://127.0.0.1:{port}/json", timeout=10).json() if t["type"] == "page")
        # legacy=True: connect now and keep the connection on the object (closed in close()).
        self._socket = connect(page["webSocketDebuggerUrl"], max_size=64 << 20, open_timeout=30, legacy=True)
        self._ids = itertools.count(1)

    def call(self, method: str, **params):
        request_id = next(self._ids)
        self._socket.send(json.dumps({"id": request_id, "method": method, "params": params}))
        while True:
            message = json.loads(self._socket.recv(timeout=120))
            if message.get("id") == request_id:
                if "error" in message:
                    raise RuntimeError(f"Chromium refused {method}: {message['error']}")
                return message.get("result", {})

    def evaluate(self, expression: str):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result.get("result", {}).get("value")

    def open(self, url: str, cookies: list[dict] = (), ready: str = "true", timeout: float = 120) -> bool:
        """Load ``url`` and wait until the JavaScript expression ``ready`` holds for 2 s in a row."""
        self.call("Network.enable")
        for cookie in cookies:
            self.call("Network.setCookie", **cookie)
        self.call("Emulation.setDeviceMetricsOverride", width=self.width, height=self.height, deviceScaleFactor=1,
                  mobile=False)
        self.call("Page.navigate", url=url)
        deadline, settled_since = time.monotonic() + timeout, None
        while time.monotonic() < deadline:
            if self.evaluate(f"document.readyState === 'complete' && !!({ready})"):
                settled_since = settled_since or time.monotonic()
                if time.monotonic() - settled_since >= 2:
                    return True
            else:
                settled_since = None
            time.sleep(0.5)
        return False

    def text(self) -> str:
        return self.evaluate("document.body.innerText") or ""

    def screenshot(self, path: Path) -> Path:
        data = self.call("Page.captureScreenshot", format="png", captureBeyondViewport=False)["data"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))
        return path

    def close(self) -> None:
        if getattr(self, "_socket", None):
            self._socket.close()
        self._process.terminate()
        try:
            self._process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self._process.kill()
        self._profile.cleanup()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
