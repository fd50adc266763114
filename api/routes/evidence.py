"""One reply's evidence package (`records.evidence`): a ZIP that verifies offline."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response
from starlette.concurrency import run_in_threadpool

from api import evidence_pdf
from api.deps import DatabaseDep, Principal, SettingsDep, require_roles
from api.policy import PoliciesDep
from api.schemas import ResourceId
from lifecycle.words import Role
from records import checkpoints, evidence, rulesets

router = APIRouter(tags=["audit"])
Examiner = Annotated[Principal, Depends(require_roles(Role.auditor, Role.supervisor))]


@router.get(
    "/drafts/{draft_id}/evidence",
    response_class=Response,
    responses={200: {"content": {"application/zip": {}}, "description": "the package"}},
)
async def evidence_package(
    draft_id: ResourceId,
    _caller: Examiner,
    database: DatabaseDep,
    settings: SettingsDep,
    policies: PoliciesDep,
) -> Response:
    """The inbound post, every version with its hash and redline, the findings with their
    rule set, each decision with the reviewer's name, role, qualification and time, the
    publication, the draft's audit events with inclusion proofs against a signed
    checkpoint, a PDF of it all, and a manifest signed with the audit log's key. Check it
    with `countersign/offline_verifier.py --evidence FILE --key KEY`."""
    signer = checkpoints.signer_of(settings)
    shipped = policies.book.shipped

    def build() -> bytes:
        with database.write() as connection:

            def ruleset_text(version: str) -> str | None:
                if version == shipped.version:
                    return shipped.source
                try:
                    return rulesets.source_of(connection, version)
                except LookupError:
                    return None

            return evidence.package(
                connection,
                draft_id,
                signer,
                render_pdf=evidence_pdf.render,
                ruleset_text=ruleset_text,
                sinks=tuple(checkpoints.sinks_of(settings)),
            )

    data = await run_in_threadpool(build)
    name = f"countersign-evidence-draft-{draft_id}.zip"
    return Response(
        data,
        media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
