-- Each amendment names the fact at the bottom of its chain of corrections, so that planning a
-- further amendment, or matching one against a subscriber's types, is one lookup however long
-- the chain has grown. Filled at append (events/commit.py); the rows already in the log are
-- filled here, the one time the log's rows are changed, with its guards lifted only inside
-- this transaction and put back as they were.
ALTER TABLE events ADD COLUMN root_event_id uuid;

DO $$
DECLARE
    guard record;
    modes text[] := '{}';
    names text[] := '{}';
BEGIN
    FOR guard IN
        SELECT tgname, tgenabled FROM pg_trigger
        WHERE tgrelid = 'events'::regclass AND NOT tgisinternal AND tgenabled <> 'D'
    LOOP
        names := names || guard.tgname::text;
        modes := modes || guard.tgenabled::text;
        EXECUTE format('ALTER TABLE events DISABLE TRIGGER %I', guard.tgname);
    END LOOP;

    WITH RECURSIVE chain (event_id, root_event_id) AS (
        SELECT a.event_id, t.event_id
        FROM events a JOIN events t ON t.event_id = a.target_event_id
        WHERE t.target_event_id IS NULL
        UNION ALL
        SELECT a.event_id, c.root_event_id
        FROM chain c JOIN events a ON a.target_event_id = c.event_id
    )
    UPDATE events e SET root_event_id = c.root_event_id
    FROM chain c WHERE e.event_id = c.event_id;

    FOR i IN 1 .. coalesce(array_length(names, 1), 0) LOOP
        EXECUTE format(
            'ALTER TABLE events ENABLE %s TRIGGER %I',
            CASE modes[i] WHEN 'A' THEN 'ALWAYS' WHEN 'R' THEN 'REPLICA' ELSE '' END,
            names[i]
        );
    END LOOP;
END;
$$;
