"""A local S3-compatible server for the lake's object-storage tests: ``moto_server`` (from
the ``moto[server]`` package, an emulator of the S3 API), on a free port of 127.0.0.1.

What the tests against it show is that oktaduck speaks the S3 protocol through DuckDB's
httpfs as configured (endpoint, path-style URLs, plain HTTP, keys from the environment): a
protocol check, not a test of any provider's service.
"""

from __future__ import annotations

import contextlib
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import httpx

from tests.helpers.lake import free_port

KEY_ID = "oktaduck-test-key"
SECRET = "oktaduck-test-secret-0123456789"  # the emulator accepts any


@dataclass
class S3Server:
    port: int
    process: subprocess.Popen[str]

    @property
    def endpoint(self) -> str:
        """host:port, as ``[storage.lake.s3] endpoint`` takes it."""
        return f"127.0.0.1:{self.port}"

    def bucket(self, name: str) -> None:
        httpx.put(f"http://{self.endpoint}/{name}").raise_for_status()

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        """Every object's key under ``prefix`` (a bucket listing, first 1000)."""
        done = httpx.get(f"http://{self.endpoint}/{bucket}", params={"prefix": prefix})
        done.raise_for_status()
        return re.findall(r"<Key>([^<]+)</Key>", done.text)


@contextlib.contextmanager
def moto_server() -> Iterator[S3Server]:
    """Start ``moto_server`` on 127.0.0.1 and wait until it says it listens; stop it after."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert process.stdout is not None
        for line in process.stdout:  # ends when the server exits
            if "Running on" in line:
                break
        else:
            raise RuntimeError(f"moto_server exited with {process.wait()}")
        # keep its pipe drained so that its request log never blocks it
        drain = threading.Thread(target=process.stdout.read, daemon=True)
        drain.start()
        try:
            yield S3Server(port, process)
        finally:
            process.terminate()
            process.wait(timeout=10)
            drain.join(timeout=10)
            process.stdout.close()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stdout is not None and not process.stdout.closed:
            process.stdout.close()
