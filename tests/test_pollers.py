"""The polled channels' readers (connectors.pollers): each channel's `poll`, and none of
their modules imported before its channel is polled (Bluesky's client library alone took a
second of every API's and worker's start)."""

from __future__ import annotations

import subprocess
import sys

from connectors import bluesky_inbound, mastodon, x_inbound
from connectors.pollers import READERS


def test_each_polled_channel_reads_with_its_modules_poll() -> None:
    assert dict(READERS) == {
        "mastodon": mastodon.poll,
        "x": x_inbound.poll,
        "bluesky": bluesky_inbound.poll,
    }
    assert "facebook" not in READERS


def test_the_api_and_the_worker_start_without_bluesky_s_client_library() -> None:
    probe = (
        "import sys, api.app, workflows.worker\n"
        "from connectors.pollers import READERS\n"
        "assert 'bluesky' in READERS\n"
        "readers = ('connectors.mastodon', 'connectors.x_inbound', 'connectors.bluesky_inbound')\n"
        "print(sorted(m for m in sys.modules if m.startswith('atproto') or m in readers))\n"
        "READERS['bluesky']\n"
        "print('atproto' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["[]", "True"]
