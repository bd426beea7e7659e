-- Webhook endpoints, their deliveries and every attempt. The log itself is the outbox: each
-- endpoint keeps a cursor (the last position it has taken deliveries from), so an append
-- writes nothing here; dispatchers turn new events into deliveries as they tail the log.

CREATE TABLE webhook_endpoints (
    endpoint_id                text        PRIMARY KEY,
    url                        text        NOT NULL,
    event_types                text[],                      -- NULL: every type
    description                text        NOT NULL DEFAULT '',
    secret                     text        NOT NULL,
    previous_secret            text,                        -- still signed with until ...
    previous_secret_expires_at timestamptz,
    created_at                 timestamptz NOT NULL DEFAULT now(),
    disabled_at                timestamptz,
    disabled_reason            text,
    last_success_at            timestamptz,
    failing_since              timestamptz                  -- first failure since a success
);

-- Each endpoint's cursor: the events up to after_position have become deliveries. It has a
-- table of its own so that a dispatcher moving it never waits on one recording outcomes.
CREATE TABLE webhook_cursors (
    endpoint_id    text   PRIMARY KEY REFERENCES webhook_endpoints ON DELETE CASCADE,
    after_position bigint NOT NULL
);

CREATE TABLE webhook_deliveries (
    delivery_id     bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    endpoint_id     text        NOT NULL REFERENCES webhook_endpoints ON DELETE CASCADE,
    position        bigint      NOT NULL,
    event_id        uuid        NOT NULL,
    replay          boolean     NOT NULL DEFAULT false,
    status          text        NOT NULL DEFAULT 'pending'
                                CHECK (status IN ('pending', 'succeeded', 'failed')),
    attempts        integer     NOT NULL DEFAULT 0,         -- started, ever (never goes down)
    series_start    integer     NOT NULL DEFAULT 0,         -- attempts before a resend
    next_attempt_at timestamptz NOT NULL DEFAULT now(),     -- or the end of a send's lease
    created_at      timestamptz NOT NULL DEFAULT now(),
    completed_at    timestamptz
);

-- An event becomes one delivery per endpoint, however many dispatchers tail the log.
CREATE UNIQUE INDEX webhook_deliveries_once ON webhook_deliveries (endpoint_id, position)
    WHERE NOT replay;
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at)
    WHERE status = 'pending';
CREATE INDEX webhook_deliveries_of_endpoint ON webhook_deliveries (endpoint_id, delivery_id);

CREATE TABLE webhook_attempts (
    attempt_id    bigint           GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    delivery_id   bigint           NOT NULL REFERENCES webhook_deliveries ON DELETE CASCADE,
    attempted_at  timestamptz      NOT NULL,
    duration_ms   double precision NOT NULL,
    response_code integer,
    succeeded     boolean          NOT NULL,
    error         text
);

CREATE INDEX webhook_attempts_of_delivery ON webhook_attempts (delivery_id, attempt_id);
