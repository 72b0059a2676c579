-- Receipts, one row per call, with their tags and attributes in child tables.
-- H2 commits each DDL statement on its own, so every statement here may run twice (two processes sharing
-- a server-mode database): each one says IF NOT EXISTS.
-- Amounts are DECFLOAT: exact at any scale (H2's NUMERIC without a scale would round to whole dollars).
CREATE TABLE IF NOT EXISTS ${prefix}receipts (
    id VARCHAR(200) NOT NULL PRIMARY KEY,
    started_at TIMESTAMP(6) WITH TIME ZONE NOT NULL,
    provider_id VARCHAR NOT NULL,
    deployment_kind VARCHAR(32) NOT NULL,
    model VARCHAR NOT NULL,
    route VARCHAR NOT NULL,
    tier VARCHAR,
    spilled_over BOOLEAN NOT NULL,
    fell_back BOOLEAN NOT NULL,
    attempts INTEGER NOT NULL,
    outcome VARCHAR(16) NOT NULL,
    error_type VARCHAR,
    total_time_us BIGINT NOT NULL,
    time_to_first_token_us BIGINT,
    queue_time_us BIGINT NOT NULL,
    compute_time_us BIGINT NOT NULL,
    instance_time_us BIGINT NOT NULL,
    cold_start_predicted BOOLEAN NOT NULL,
    cold_start_observed BOOLEAN NOT NULL,
    cold_start_us BIGINT,
    input_tokens BIGINT NOT NULL,
    output_tokens BIGINT NOT NULL,
    cached_input_tokens BIGINT NOT NULL,
    tokens_estimated BOOLEAN NOT NULL,
    request_bytes BIGINT NOT NULL,
    response_bytes BIGINT NOT NULL,
    cost DECFLOAT NOT NULL,
    cost_estimated BOOLEAN NOT NULL,
    session_id VARCHAR,
    received_at TIMESTAMP(6) WITH TIME ZONE NOT NULL
);

CREATE INDEX IF NOT EXISTS ${prefix}receipts_started_at ON ${prefix}receipts (started_at);

CREATE TABLE IF NOT EXISTS ${prefix}receipt_tags (
    receipt_id VARCHAR(200) NOT NULL,
    tag_key VARCHAR NOT NULL,
    tag_value VARCHAR NOT NULL,
    PRIMARY KEY (receipt_id, tag_key),
    FOREIGN KEY (receipt_id) REFERENCES ${prefix}receipts (id) ON DELETE CASCADE
);

CREATE INDEX IF NOT EXISTS ${prefix}receipt_tags_key ON ${prefix}receipt_tags (tag_key);

CREATE TABLE IF NOT EXISTS ${prefix}receipt_attributes (
    receipt_id VARCHAR(200) NOT NULL,
    attribute_key VARCHAR NOT NULL,
    attribute_value VARCHAR NOT NULL,
    PRIMARY KEY (receipt_id, attribute_key),
    FOREIGN KEY (receipt_id) REFERENCES ${prefix}receipts (id) ON DELETE CASCADE
);
