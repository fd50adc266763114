"""A real worker process for crash tests: `python -m tests.fault_worker`.

The same worker as `countersign worker`, except that with FAULT_PUBLISH_DELAY set its outbox
stands in for a slow platform: the reply is recorded, then the answer takes that many
seconds, so a test can kill the process after the post left and before it was confirmed.
"""

from __future__ import annotations

import asyncio
import os
import time
from concurrent.futures import ThreadPoolExecutor

from connectors import egress
from connectors.base import Posted, Reply
from connectors.outbox import OutboxPublisher
from records import vault
from records.db import Database
from records.settings import load_settings
from workflows.connection import connect
from workflows.worker import ACTIVITY_THREADS, build_worker


class SlowOutbox(OutboxPublisher):
    def post(self, reply: Reply) -> Posted:
        posted = super().post(reply)
        print("POSTED", reply.key, flush=True)
        time.sleep(float(os.environ["FAULT_PUBLISH_DELAY"]))
        return posted


async def main() -> None:
    settings = load_settings()
    egress.configure(egress.EgressPolicy.of(settings))  # as `countersign worker` does
    vault.configure(vault.Vault.of(settings))
    database = Database(settings.resolved_database_url)
    client = await connect(settings.temporal_address, settings.temporal_namespace)
    slow = "FAULT_PUBLISH_DELAY" in os.environ
    outbox = SlowOutbox(database) if slow else OutboxPublisher(database)
    with ThreadPoolExecutor(max_workers=ACTIVITY_THREADS) as executor:
        worker = build_worker(
            client, settings.task_queue, database, executor, publishers={"outbox": outbox}
        )
        print("READY", flush=True)
        await worker.run()


if __name__ == "__main__":
    asyncio.run(main())
