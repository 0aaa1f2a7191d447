"""Every thread's stack on SIGUSR1 (``ingest.base.stacks``): names, never values, and a
signal handled on the main thread, which cannot crash the process however busy its threads."""

from __future__ import annotations

import io
import os
import signal
import threading
from collections.abc import Iterator

import pytest

from ingest.base.stacks import dump_stacks, install

SECRET = "s3cr3t-" + "v" * 20


def hold_the_secret(secret: str, release: threading.Event, ready: threading.Event) -> None:
    ready.set()
    release.wait(30)
    assert secret  # keeps the value alive in this frame


@pytest.fixture
def waiter() -> Iterator[threading.Thread]:
    release, ready = threading.Event(), threading.Event()
    thread = threading.Thread(
        target=hold_the_secret, args=(SECRET, release, ready), name="waiter", daemon=True
    )
    thread.start()
    assert ready.wait(10)
    yield thread
    release.set()
    thread.join(10)


def test_every_thread_is_shown_by_name_and_function_never_by_value(
    waiter: threading.Thread,
) -> None:
    out = io.StringIO()
    dump_stacks(out)
    text = out.getvalue()
    assert f"Thread {waiter.ident:#018x} (waiter, most recent call first):" in text
    assert "in hold_the_secret" in text and 'File "' in text
    assert text.count("Current thread ") == 1
    assert SECRET not in text and "release.wait" not in text  # no values, no source text


def churn(stop: threading.Event) -> None:
    """Frames made and dropped as fast as Python can."""

    def deep(n: int) -> int:
        return n if n == 0 else deep(n - 1) + 1

    while not stop.is_set():
        deep(30)


def test_many_signals_while_threads_churn_frames_leave_the_process_running(
    capfd: pytest.CaptureFixture[str],
) -> None:
    previous = signal.getsignal(signal.SIGUSR1)
    stop = threading.Event()
    threads = [threading.Thread(target=churn, args=(stop,), name=f"churn-{n}") for n in range(2)]
    install(signal.SIGUSR1)
    try:
        for thread in threads:
            thread.start()
        for _ in range(20):
            os.kill(os.getpid(), signal.SIGUSR1)  # handled on this (the main) thread
    finally:
        stop.set()
        for thread in threads:
            thread.join(10)
        signal.signal(signal.SIGUSR1, previous)
    err = capfd.readouterr().err
    # signals that arrive before the handler runs are one (POSIX does not queue them)
    assert 1 <= err.count("(churn-0, most recent call first):") <= 20
    assert "in deep" in err and "Current thread " in err
