"""The channels whose posts are polled (`workflows.polling`), each with its reader:
`(account, position) -> batches of posts, each with the position to keep once stored`.
The position is the reader's own (opaque) string; None starts from the newest posts.

A reader's module is imported when its channel is first polled: Bluesky's client library
alone takes a second to import, which every API and worker paid at start-up, and most never
poll Bluesky."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from connectors.inbound import InboundPost

Batches = Iterator[tuple[list[InboundPost], str]]
Reader = Callable[[Any, str | None], Batches]
_MODULES = {
    "mastodon": "connectors.mastodon",
    "x": "connectors.x_inbound",
    "bluesky": "connectors.bluesky_inbound",
}


class _Readers(Mapping[str, Reader]):
    """Each polled channel's reader: its module's `poll`, imported on first use."""

    def __getitem__(self, channel: str) -> Reader:
        reader: Reader = importlib.import_module(_MODULES[channel]).poll
        return reader

    def __contains__(self, channel: object) -> bool:  # without importing (Mapping's would)
        return channel in _MODULES

    def __iter__(self) -> Iterator[str]:
        return iter(_MODULES)

    def __len__(self) -> int:
        return len(_MODULES)


READERS: Mapping[str, Reader] = _Readers()
