-- The verifiable log (events/merkle.py): the nodes of the complete subtrees of the RFC 9162
-- Merkle tree over the events, and every checkpoint the ledger signed. Both only ever grow:
-- a node, once its subtree is complete, and a signed checkpoint never change.
CREATE TABLE merkle_nodes (
    level smallint NOT NULL CHECK (level >= 0 AND level < 64),
    idx   bigint   NOT NULL CHECK (idx >= 0),
    hash  bytea    NOT NULL CHECK (length(hash) = 32),
    PRIMARY KEY (level, idx)
);

CREATE TABLE signed_checkpoints (
    tree_size bigint      PRIMARY KEY CHECK (tree_size > 0),
    root      bytea       NOT NULL CHECK (length(root) = 32),
    note      text        NOT NULL,
    signed_at timestamptz NOT NULL DEFAULT now()
);

CREATE FUNCTION merkle_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the Merkle tree and its checkpoints only grow: % on % is refused',
        TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE TRIGGER merkle_nodes_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON merkle_nodes
    FOR EACH STATEMENT EXECUTE FUNCTION merkle_refuse_change();

CREATE TRIGGER signed_checkpoints_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON signed_checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION merkle_refuse_change();

-- Like the log's own guards (0007), these hold in every session mode.
ALTER TABLE merkle_nodes ENABLE ALWAYS TRIGGER merkle_nodes_append_only;
ALTER TABLE signed_checkpoints ENABLE ALWAYS TRIGGER signed_checkpoints_append_only;
