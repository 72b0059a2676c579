-- Receipts, one row per call, with their tags and attributes in child tables.
-- The whole script runs in one transaction, under an advisory lock that serializes migrating instances.
-- Amounts are NUMERIC without a precision: exact at any scale. Costs carry up to 12 decimal places from
-- hourly rates, and more from per-GB prices divided by 2^30, so a fixed scale would round some of them.
CREATE TABLE ${prefix}receipts (
    id VARCHAR(200) NOT NULL PRIMARY KEY,
    started_at TIMESTAMP WITH TIME ZONE NOT NULL,
    provider_id TEXT NOT NULL,
    deployment_kind VARCHAR(32) NOT NULL,
    model TEXT NOT NULL,
    route TEXT NOT NULL,
    tier TEXT,
    spilled_over BOOLEAN NOT NULL,
    fell_back BOOLEAN NOT NULL,
    attempts INTEGER NOT NULL,
    outcome VARCHAR(16) NOT NULL,
    error_type TEXT,
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
    cost NUMERIC NOT NULL,
    cost_estimated BOOLEAN NOT NULL,
    session_id TEXT,
    received_at TIMESTAMP WITH TIME ZONE NOT NULL
);

CREATE INDEX ${prefix}receipts_started_at ON ${prefix}receipts (started_at);

CREATE TABLE ${prefix}receipt_tags (
    receipt_id VARCHAR(200) NOT NULL,
    tag_key TEXT NOT NULL,
    tag_value TEXT NOT NULL,
    PRIMARY KEY (receipt_id, tag_key),
    FOREIGN KEY (receipt_id) REFERENCES ${prefix}receipts (id) ON DELETE CASCADE
);

CREATE INDEX ${prefix}receipt_tags_key ON ${prefix}receipt_tags (tag_key);

CREATE TABLE ${prefix}receipt_attributes (
    receipt_id VARCHAR(200) NOT NULL,
    attribute_key TEXT NOT NULL,
    attribute_value TEXT NOT NULL,
    PRIMARY KEY (receipt_id, attribute_key),
    FOREIGN KEY (receipt_id) REFERENCES ${prefix}receipts (id) ON DELETE CASCADE
);
