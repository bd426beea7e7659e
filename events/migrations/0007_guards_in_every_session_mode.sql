-- The guards hold in every session mode. A trigger that is merely ENABLEd does not fire in a
-- session with `session_replication_role = replica`, which any superuser (and any role allowed
-- to set it) may choose without DDL; ENABLE ALWAYS makes it fire there too.
ALTER TABLE events ENABLE ALWAYS TRIGGER events_append_only;

-- The head is the writer's to move, forward only: a head deleted, truncated or moved back would
-- let the chain be restarted or positions be drawn twice. Updating it in place is what every
-- append does, so only an UPDATE that does not advance the position is refused (the writer's
-- conditional UPDATE that finds the head moved leaves the row as it was, which is allowed).
CREATE FUNCTION ledger_head_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the event log is append-only: its head only moves forward (% refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'append events through the ledger instead';
END;
$$;

CREATE TRIGGER ledger_head_kept
    BEFORE DELETE OR TRUNCATE ON ledger_head
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_head_refuse_change();

CREATE TRIGGER ledger_head_moves_forward
    BEFORE UPDATE ON ledger_head
    FOR EACH ROW
    WHEN (NEW.position < OLD.position
          OR (NEW.position = OLD.position
              AND (NEW.hash, NEW.recorded_at) IS DISTINCT FROM (OLD.hash, OLD.recorded_at)))
    EXECUTE FUNCTION ledger_head_refuse_change();

ALTER TABLE ledger_head ENABLE ALWAYS TRIGGER ledger_head_kept;
ALTER TABLE ledger_head ENABLE ALWAYS TRIGGER ledger_head_moves_forward;
