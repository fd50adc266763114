"""The activity that signs a checkpoint of the audit log (`workflows.checkpointing` runs it
on a durable timer): the tree as it stands, stored and written to the folder outside the
database, unless nothing was appended since the last one."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from temporalio import activity

from records import checkpoints
from records.db import Database
from workflows.contracts import ActivityName, CheckpointJob, Signed


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
