"""The Core tables behind the models, for the hot paths (every action's reads and writes)
that run prepared statements instead of the ORM's unit of work."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table

from records.account_models import ChannelAccount, RuleSetRecord
from records.audit_models import AuditCheckpoint, AuditEvent, AuditNode, LegalHold
from records.customer_models import Conversation, Customer, CustomerIdentity, CustomerNote
from records.draft_models import (
    Decision,
    Draft,
    DraftVersion,
    OutboxMessage,
    Publication,
    StageReview,
)
from records.notification_models import Notification, NotificationDelivery, NotificationPreference
from records.post_models import Post
from records.routing_models import AgentProfile, Queue, Team
from records.user_models import User, UserRole


def _table(model: Any) -> Table:
    table: Table = model.__table__
    return table


DRAFTS = _table(Draft)
VERSIONS = _table(DraftVersion)
DECISIONS = _table(Decision)
POSTS = _table(Post)
CUSTOMERS = _table(Customer)
IDENTITIES = _table(CustomerIdentity)
CONVERSATIONS = _table(Conversation)
NOTES = _table(CustomerNote)
PUBLICATIONS = _table(Publication)
EVENTS = _table(AuditEvent)
NODES = _table(AuditNode)
CHECKPOINTS = _table(AuditCheckpoint)
HOLDS = _table(LegalHold)
USERS = _table(User)
USER_ROLES = _table(UserRole)
OUTBOX = _table(OutboxMessage)
RULE_SETS = _table(RuleSetRecord)
STAGE_REVIEWS = _table(StageReview)
NOTIFICATIONS = _table(Notification)
DELIVERIES = _table(NotificationDelivery)
PREFERENCES = _table(NotificationPreference)
CHANNEL_ACCOUNTS = _table(ChannelAccount)
TEAMS = _table(Team)
QUEUES = _table(Queue)
AGENTS = _table(AgentProfile)
