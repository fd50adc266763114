"""The evidence package's PDF: the same facts as its JSON files, for people (fpdf2).

FINRA 2210(b)(4) asks for the approving principal's name and the approval date with each
retail communication; the PDF leads with those. Text goes in DejaVu Sans where the system
has it (Debian's fonts-dejavu-core), which covers what customers write; else in the PDF
core font, with what Latin-1 cannot show replaced by '?'.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fpdf import FPDF

DEJAVU = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
DEJAVU_BOLD = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf")


class _Document(FPDF):
    def __init__(self) -> None:
        super().__init__(format="A4")
        self.set_auto_page_break(auto=True, margin=15)
        self.unicode = DEJAVU.exists() and DEJAVU_BOLD.exists()
        if self.unicode:
            self.add_font("Body", "", str(DEJAVU))
            self.add_font("Body", "B", str(DEJAVU_BOLD))
        self.family = "Body" if self.unicode else "Helvetica"

    def text_of(self, value: Any) -> str:
        text = "" if value is None else str(value)
        return text if self.unicode else text.encode("latin-1", "replace").decode("latin-1")

    def heading(self, text: str) -> None:
        self.set_font(self.family, "B", 12)
        self.ln(3)
        self.multi_cell(0, 7, self.text_of(text), new_x="LMARGIN", new_y="NEXT")
        self.set_font(self.family, "", 9)

    def line_of(self, text: Any) -> None:
        self.multi_cell(0, 5, self.text_of(text), new_x="LMARGIN", new_y="NEXT")


def render(summary: dict[str, Any]) -> bytes:
    """`summary` (see `records.evidence.package`) as a PDF."""
    pdf = _Document()
    pdf.add_page()
    draft, post = summary["draft"], summary["post"]
    pdf.set_font(pdf.family, "B", 16)
    pdf.line_of(f"Evidence: reply {draft['id']} ({draft['status']})")
    pdf.set_font(pdf.family, "", 9)
    pdf.line_of(f"Route: {' -> '.join(draft['route']) or 'none'}; author: {draft['author']}")
    pdf.heading("Approvals")
    approvals = [d for d in summary["decisions"] if d["decision"] == "approve"]
    for d in approvals or [{"reviewer": "none", "stage": "", "role": "", "at": ""}]:
        qualification = f", {d['qualification']}" if d.get("qualification") else ""
        pdf.line_of(
            f"{d['stage']}: {d['reviewer']} (as {d['role']}{qualification}) on {d['at']}, "
            f"version {d.get('version', '')}, sha256 {str(d.get('content_sha256') or '')[:16]}"
        )
    pdf.heading("The customer's post")
    pdf.line_of(
        f"{post['channel']} {post['external_id']} by {post['author']} at {post['received_at']}"
    )
    pdf.line_of(post["text"])
    pdf.heading("Versions")
    for version in summary["versions"]:
        pdf.line_of(
            f"v{version['version']} by {version['created_by']} at {version['created_at']}, "
            f"sha256 {version['content_sha256']}"
        )
        pdf.line_of(version["body"])
    pdf.heading("Decisions")
    for d in summary["decisions"]:
        comment = f": {d['comment']}" if d.get("comment") else ""
        pdf.line_of(
            f"{d['at']} {d['reviewer']} ({d['role']}) {d['decision']} v{d['version']}{comment}"
        )
    pdf.heading("Publication")
    for p in summary["publication"] or [{"status": "not published"}]:
        where = f" on {p.get('channel')} as {p.get('external_id')} ({p.get('external_url')})"
        pdf.line_of(f"{p['status']}{where if p.get('channel') else ''}")
        if p.get("first_published_at"):
            pdf.line_of(f"first published {p['first_published_at']}")
    pdf.heading("Audit events")
    for e in summary["events"]:
        pdf.line_of(f"{e['seq']} {e['at']} {e['actor']} ({e['role']}) {e['action']}")
    checkpoint = summary["checkpoint"]
    pdf.heading("Proof")
    pdf.line_of(
        f"Each event above is proved included in the audit log's Merkle tree of "
        f"{checkpoint['size']} events, signed at {checkpoint['at']} (proofs.json, "
        "checkpoint.txt). Check the package with countersign/offline_verifier.py --evidence."
    )
    return bytes(pdf.output())
