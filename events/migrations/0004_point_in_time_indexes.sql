-- Point-in-time reads. recorded_at never decreases in position order, so the last event known
-- at an instant is the first entry of this index at or before it.
CREATE INDEX events_recorded_at_position ON events (recorded_at, position);

-- Export rules are read whole (they are few) by every company query.
CREATE INDEX events_export_rule_streams ON events (position) WHERE stream LIKE 'export-rule:%';

-- Which companies an investor took part in, through rounds and their corrections.
CREATE INDEX events_round_investors ON events
    USING gin (((data::jsonb) -> 'investors') jsonb_path_ops)
    WHERE type = 'round_announced';
CREATE INDEX events_corrected_round_investors ON events
    USING gin (((data::jsonb) -> 'data' -> 'investors') jsonb_path_ops)
    WHERE type = 'event_corrected';

-- One entry per stream: lists the companies without reading every event.
CREATE INDEX events_stream_firsts ON events (stream) WHERE stream_version = 1;
