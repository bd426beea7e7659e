-- Read models kept by the projector (projections/projector.py) for cross-entity questions.
-- They are indexes for finding candidates; answers are still folded from the log.

-- How far each projection has applied the log, committed with the read model's rows.
CREATE TABLE projection_checkpoints (
    name     text   PRIMARY KEY,
    position bigint NOT NULL,
    error    text
);
INSERT INTO projection_checkpoints (name, position) VALUES ('read_models', 0);

-- Every company that has a stream, in id order for browsing.
CREATE TABLE rm_companies (
    company_id     text   PRIMARY KEY,
    first_position bigint NOT NULL
);

-- Which companies an investor took part in (through a round, or a correction of one).
CREATE TABLE rm_investor_companies (
    investor_id    text   NOT NULL,
    company_id     text   NOT NULL,
    first_position bigint NOT NULL,
    PRIMARY KEY (investor_id, company_id)
);
