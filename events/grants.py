"""The privileges a service role needs, and no more: the log can be read and appended to only.

The schema's owner runs ``ledger migrate`` (and ``ledger projections rebuild``, which swaps
tables); the service runs as a role given exactly these grants. It has no UPDATE, DELETE or
TRUNCATE on ``events``: even a compromised service cannot rewrite history, and the trigger that
refuses those statements is a second line, not the only one.
"""

from __future__ import annotations

import re

_ROLE = re.compile(r"[a-z_][a-z0-9_]{0,62}")
# Names PostgreSQL reads as something else than a role of that name.
_RESERVED = {"public", "current_user", "session_user", "current_role", "none", "all"}

# Privileges on the log's tables (events, ledger_head), not reads of them: they belong with the
# schema, beside the migrations, rather than with the log's reader (events/log.py).
GRANTS = """\
-- The ledger's service role: read and append the log, keep the read models and webhooks.
GRANT USAGE ON SCHEMA public TO {role};
GRANT SELECT ON schema_migrations TO {role};
GRANT SELECT, INSERT ON events TO {role};
GRANT SELECT, UPDATE ON ledger_head TO {role};
GRANT SELECT ON api_keys TO {role};  -- keys are created and revoked by the owner's CLI
GRANT SELECT, UPDATE ON projection_checkpoints TO {role};
GRANT SELECT, INSERT, UPDATE, DELETE ON rm_companies, rm_investor_companies TO {role};
GRANT SELECT, INSERT, UPDATE, DELETE
    ON webhook_endpoints, webhook_cursors, webhook_deliveries, webhook_attempts TO {role};
GRANT SELECT, INSERT ON merkle_nodes, signed_checkpoints TO {role};
GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO {role};
-- Nothing else: no UPDATE, DELETE or TRUNCATE on the log, its tree or checkpoints; no DDL.
REVOKE UPDATE, DELETE, TRUNCATE ON events, merkle_nodes, signed_checkpoints FROM {role};
"""


def service_grants(role: str) -> str:
    """Return the GRANT statements for ``role`` (a plain lower-case identifier)."""
    if not _ROLE.fullmatch(role) or role in _RESERVED or role.startswith("pg_"):
        raise ValueError(
            f"{role!r} is not a plain role name (lower-case letters, digits, _; not a "
            "reserved name such as public)"
        )
    return GRANTS.format(role=role)
