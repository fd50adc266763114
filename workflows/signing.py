"""The audit log's scheduled activities (`workflows.checkpointing` runs them on durable
timers): signing a checkpoint of the tree as it stands (stored and written to the folder
outside the database, unless nothing was appended since the last one), and erasing what
has outlived its retention period."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from temporalio import activity

from records import checkpoints, retention
from records.db import Database
from workflows.background_contracts import CheckpointJob, Purged, PurgeJob, Signed
from workflows.contracts import ActivityName


class CheckpointActivities:
    def __init__(
        self, database: Database, signer: checkpoints.Signer, sinks: Sequence[Path] = ()
    ) -> None:
        self.database, self.signer, self.sinks = database, signer, tuple(sinks)

    @activity.defn(name=ActivityName.sign_checkpoint)
    def sign_checkpoint(self, _job: CheckpointJob) -> Signed:
        with self.database.write() as connection:
            found = checkpoints.issue(connection, self.signer, sinks=self.sinks)
        return Signed(tree_size=found.size if found else None)


class PurgeActivities:
    """Erasing what has outlived its retention period, holds permitting
    (`records.retention.purge`)."""

    def __init__(self, database: Database) -> None:
        self.database = database

    @activity.defn(name=ActivityName.purge_expired)
    def purge_expired(self, job: PurgeJob) -> Purged:
        with self.database.write() as connection:
            erased = retention.purge(connection, job.days)
        return Purged(posts=erased.posts, versions=erased.versions, events=erased.events)
