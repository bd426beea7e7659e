-- Which fact each event reports (events/facts.py): computed once, when the event is appended,
-- and stored with it, so that no later change of the derivation can regroup old reports.
-- Amendments (corrections, retractions, ranks) report no fact of their own: their key is NULL
-- and they belong to their target's fact through target_event_id. The key is not part of the
-- canonical encoding the hash chain covers (events/chain.py), so every stored hash still holds.
ALTER TABLE events ADD COLUMN fact text;

-- The events still waiting for their key (those appended before this column existed): the
-- backfill (events/fact_fill.py) walks this index, and once it is done the index is empty, so
-- checking at every start that nothing is left costs one probe.
CREATE INDEX events_fact_missing ON events (position)
    WHERE fact IS NULL AND type NOT IN ('event_corrected', 'event_retracted', 'report_ranked');

-- GET /sources walks the sources in name order, counting reports from the index alone.
CREATE INDEX events_source_name ON events ((source ->> 'name'), type);

-- History is still never changed, with one exception: a key missing from an event appended
-- before the column existed may be filled in, once. Why not a side table of keys: every read
-- of events (by stream, by position, by id) would pay a join for a value that is written once;
-- and why not a trigger switched off during the backfill: that would let any change through.
-- The statement-level refusal lets an UPDATE through only in a session that says it is filling
-- keys, and the row-level check below then refuses any UPDATE of such a session that changes
-- anything but a missing key of a report.
CREATE OR REPLACE FUNCTION events_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND current_setting('ledger.fill_fact_keys', true) = 'on' THEN
        RETURN NULL;  -- each row is checked by events_fact_filled_once
    END IF;
    RAISE EXCEPTION 'the event log is append-only: % on events is refused', TG_OP
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'append an event_corrected or event_retracted event instead';
END;
$$;

CREATE FUNCTION events_fill_fact_once() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    unchanged events;
BEGIN
    unchanged := NEW;
    unchanged.fact := OLD.fact;
    IF OLD.fact IS NULL AND NEW.fact IS NOT NULL AND unchanged::text = OLD::text
       AND OLD.type NOT IN ('event_corrected', 'event_retracted', 'report_ranked') THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'the event log is append-only: only a missing fact key may be filled in'
        USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE TRIGGER events_fact_filled_once
    BEFORE UPDATE ON events
    FOR EACH ROW WHEN (current_setting('ledger.fill_fact_keys', true) = 'on')
    EXECUTE FUNCTION events_fill_fact_once();
