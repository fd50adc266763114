"""Customers: one person across channels (issue 22).

A post's author is an identity on its channel, kept up to date from each newer post; a new
identity is a new customer (both where posts are stored, `records.ingest`). Agents and
supervisors link two customers they know are one person (`link`: the other's identities,
posts, conversations and notes move over, and it points to the one it was merged into) and
unlink an identity (`unlink`: it becomes a customer of its own again, with its posts and
conversations). Both are audited.
"""

from __future__ import annotations

from sqlalchemy import update
from sqlmodel import Session, col, select

from records import audit, locks
from records.customer_models import (
    Conversation,
    Customer,
    CustomerIdentity,
    CustomerNote,
    CustomerPublic,
    IdentityPublic,
    NotePublic,
)
from records.errors import Conflict, NotFound
from records.post_models import Post
from records.tables import POSTS
from records.types import utcnow

MAX_MERGES = 32  # links followed from a merged customer to the one it lives on in


def current(session: Session, customer_id: int) -> Customer:
    """The customer, or the one it was linked into (a link may have been followed by more)."""
    customer = session.get(Customer, customer_id)
    for _ in range(MAX_MERGES):
        if customer is None:
            raise NotFound(f"no customer with id {customer_id}")
        if customer.merged_into is None:
            return customer
        customer = session.get(Customer, customer.merged_into)
    raise Conflict(f"customer {customer_id} was linked more than {MAX_MERGES} times over")


def view(session: Session, customer_id: int) -> CustomerPublic:
    customer = current(session, customer_id)
    identities = session.exec(
        select(CustomerIdentity)
        .where(CustomerIdentity.customer_id == customer.id)
        .order_by(col(CustomerIdentity.id))
    ).all()
    notes = session.exec(
        select(CustomerNote)
        .where(CustomerNote.customer_id == customer.id)
        .order_by(col(CustomerNote.id).desc())
    ).all()
    assert customer.id is not None
    return CustomerPublic(
        id=customer.id,
        display_name=customer.display_name,
        identities=[IdentityPublic.model_validate(i, from_attributes=True) for i in identities],
        notes=[NotePublic.model_validate(n, from_attributes=True) for n in notes],
        crm_id=customer.crm_id,
        crm_tier=customer.crm_tier,
        crm_value=customer.crm_value,
        crm_checked_at=customer.crm_checked_at,
    )


def link(session: Session, into_id: int, other_id: int, *, actor: str, role: str) -> Customer:
    """`other` is the same person as `into`: its identities, posts, conversations and notes
    are `into`'s from now on. Audited with the identities moved (what `unlink` undoes)."""
    locks.hold_off_ingest(session.connection())
    into, other = current(session, into_id), current(session, other_id)
    if into.id == other.id:
        raise Conflict(f"customers {into_id} and {other_id} are already one")
    assert into.id is not None and other.id is not None
    # Both rows locked in id order (PostgreSQL; SQLite writes one at a time): two people
    # linking A into B and B into A at once cannot make a loop; the second finds one merged.
    locked = session.exec(
        select(Customer)
        .where(col(Customer.id).in_(sorted((into.id, other.id))))
        .order_by(col(Customer.id))
        .with_for_update()
    ).all()
    if any(customer.merged_into is not None for customer in locked):
        raise Conflict(f"customer {into_id} or {other_id} was linked meanwhile; try again")
    moved = session.exec(
        select(CustomerIdentity.id).where(CustomerIdentity.customer_id == other.id)
    ).all()
    locks.rows(session.connection(), POSTS, POSTS.c.customer_id == other.id)
    for table in (CustomerIdentity, Post, Conversation, CustomerNote):
        owner = col(table.customer_id)
        session.execute(update(table).where(owner == other.id).values(customer_id=into.id))
    # Whoever was merged into `other` now points straight at `into`: chains stay one long.
    session.execute(
        update(Customer).where(col(Customer.merged_into) == other.id).values(merged_into=into.id)
    )
    other.merged_into = into.id
    other.updated_at = into.updated_at = utcnow()
    session.add_all([other, into])
    audit.append(
        session,
        audit.NewEvent(
            actor=actor,
            role=role,
            action="customer.linked",
            payload={"customer_id": into.id, "linked": other.id, "identities": list(moved)},
        ),
    )
    return into


def unlink(
    session: Session, customer_id: int, identity_id: int, *, actor: str, role: str
) -> Customer:
    """The identity is not this customer: it becomes a customer of its own again, with its
    posts and its conversations (each conversation is one identity's). The customer keeps
    its other identities."""
    locks.hold_off_ingest(session.connection())
    customer = current(session, customer_id)
    identity = session.get(CustomerIdentity, identity_id)
    if identity is None or identity.customer_id != customer.id:
        raise NotFound(f"customer {customer_id} has no identity {identity_id}")
    others = session.exec(
        select(CustomerIdentity.id).where(
            CustomerIdentity.customer_id == customer.id, CustomerIdentity.id != identity_id
        )
    ).first()
    if others is None:
        raise Conflict(f"identity {identity_id} is customer {customer.id}'s only one")
    alone = Customer(display_name=identity.display_name or identity.handle)
    session.add(alone)
    session.flush()
    identity.customer_id = alone.id  # type: ignore[assignment]
    session.add(identity)
    locks.rows(session.connection(), POSTS, POSTS.c.identity_id == identity_id)
    session.execute(
        update(Post).where(col(Post.identity_id) == identity_id).values(customer_id=alone.id)
    )
    session.execute(
        update(Conversation)
        .where(col(Conversation.identity_id) == identity_id)
        .values(customer_id=alone.id)
    )
    audit.append(
        session,
        audit.NewEvent(
            actor=actor,
            role=role,
            action="customer.unlinked",
            payload={"customer_id": customer.id, "identity_id": identity_id, "now": alone.id},
        ),
    )
    return alone


def add_note(
    session: Session, customer_id: int, text: str, *, actor: str, role: str
) -> CustomerNote:
    customer = current(session, customer_id)
    assert customer.id is not None
    note = CustomerNote(customer_id=customer.id, author=actor, text=text)
    session.add(note)
    session.flush()
    audit.append(  # who wrote a note about whom; never what it says
        session,
        audit.NewEvent(
            actor=actor, role=role, action="customer.note_added",
            payload={"customer_id": customer.id, "note_id": note.id},
        ),
    )  # fmt: skip
    return note
