"""What a benchmark's own `countersign api` and `worker` processes need in their environment:
secrets of their own (the published development values are refused; see
`countersign.cli._refuse_development_secrets`). Throwaway, made per run."""

from __future__ import annotations

import base64
import os
import secrets


def own_secrets() -> dict[str, str]:
    return {
        "COUNTERSIGN_JWT_SECRET": secrets.token_urlsafe(32),
        "COUNTERSIGN_CSRF_SECRET": secrets.token_urlsafe(32),
        "COUNTERSIGN_ACTION_KEY": secrets.token_urlsafe(32),
        "COUNTERSIGN_AUDIT_SIGNING_KEY": base64.b64encode(os.urandom(32)).decode(),
        "COUNTERSIGN_SECRETS_KEY": base64.b64encode(os.urandom(32)).decode(),
    }
