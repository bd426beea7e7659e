-- Leases that end with their owner. Each dispatcher takes an id from this sequence and holds a
-- session-level advisory lock on (class, id) on a connection of its own for as long as it
-- runs; a lease records the id. When the owner's process dies its connection closes, the lock
-- is free, and its leases can be taken back at once instead of when they run out.
CREATE SEQUENCE webhook_dispatcher_ids AS integer CYCLE;

ALTER TABLE webhook_deliveries ADD COLUMN leased_by integer;  -- NULL: not leased

-- The leases in force, looked at for owners that have gone.
CREATE INDEX webhook_deliveries_leased ON webhook_deliveries (leased_by)
    WHERE status = 'pending' AND leased_by IS NOT NULL;

-- Each endpoint's due deliveries, so a claim can take a bounded number from each.
CREATE INDEX webhook_deliveries_due_per_endpoint
    ON webhook_deliveries (endpoint_id, next_attempt_at) WHERE status = 'pending';
