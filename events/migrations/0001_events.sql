-- The append-only event log. Envelope fields are columns; the payload, provenance and
-- metadata are `json` (not `jsonb`) so that the exact canonical text that was hashed is kept.
CREATE TABLE events (
    position        bigint      PRIMARY KEY,
    event_id        uuid        NOT NULL,
    stream          text        NOT NULL,
    stream_version  integer     NOT NULL CHECK (stream_version > 0),
    type            text        NOT NULL,
    schema_version  smallint    NOT NULL DEFAULT 1,
    effective_date  date        NOT NULL,
    recorded_at     timestamptz NOT NULL,
    source          json        NOT NULL,
    data            json        NOT NULL,
    metadata        json,
    target_event_id uuid,
    hash            bytea       NOT NULL,
    CONSTRAINT events_event_id_key UNIQUE (event_id),
    -- Optimistic concurrency is checked in the append and backed here.
    CONSTRAINT events_stream_version_key UNIQUE (stream, stream_version)
);

CREATE INDEX events_type_position ON events (type, position);
CREATE INDEX events_target_event_id ON events (target_event_id) WHERE target_event_id IS NOT NULL;

-- The head of the log: one row, locked by every append transaction. Holding it serialises
-- appends, which is what makes positions gapless and commit-ordered (see events/store.py).
CREATE TABLE ledger_head (
    singleton   boolean     PRIMARY KEY DEFAULT true CHECK (singleton),
    position    bigint      NOT NULL,
    hash        bytea       NOT NULL,
    recorded_at timestamptz NOT NULL
);

INSERT INTO ledger_head (position, hash, recorded_at)
VALUES (0, decode(repeat('00', 32), 'hex'), '1970-01-01T00:00:00Z');
