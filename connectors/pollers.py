"""The channels whose posts are polled (`workflows.polling`), each with its reader:
`(account, position) -> batches of posts, each with the position to keep once stored`.
The position is the reader's own (opaque) string; None starts from the newest posts."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from connectors import bluesky_inbound, mastodon, x_inbound
from connectors.inbound import InboundPost

Batches = Iterator[tuple[list[InboundPost], str]]
READERS: dict[str, Callable[[Any, str | None], Batches]] = {
    "mastodon": mastodon.poll,
    "x": x_inbound.poll,
    "bluesky": bluesky_inbound.poll,
}
