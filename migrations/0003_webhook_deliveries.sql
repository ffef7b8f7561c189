-- The webhook inbox (DESIGN §6): every accepted delivery is stored here and its processing job
-- enqueued in the same transaction, so nothing acknowledged is lost and nothing runs twice.

CREATE TABLE webhook_deliveries (
    id           bigserial PRIMARY KEY,
    source       text NOT NULL CHECK (source IN ('plane', 'gitea')),
    delivery_id  text,                       -- X-Plane-Delivery / X-Gitea-Delivery, when sent
    body_sha256  text NOT NULL,              -- hex SHA-256 of the raw body
    event        text NOT NULL,              -- 'issue.created', 'pull_request', 'status', …
    status       text NOT NULL DEFAULT 'pending'
                 CHECK (status IN ('pending', 'processed', 'ignored', 'failed')),
    reason       text,                       -- why it was ignored or failed
    payload      jsonb NOT NULL,
    job_id       bigint,                     -- the process_webhook job
    received_at  timestamptz NOT NULL DEFAULT now(),
    processed_at timestamptz
);
COMMENT ON TABLE webhook_deliveries IS 'Signed webhook deliveries from Plane and Gitea, deduplicated.';

-- Gitea's delivery id is stable across redeliveries; Plane's is too when it is resent as is.
CREATE UNIQUE INDEX webhook_deliveries_delivery_idx ON webhook_deliveries (source, delivery_id) WHERE delivery_id IS NOT NULL;
-- Plane makes a new delivery id per retry of the same body: the body hash catches those.
CREATE UNIQUE INDEX webhook_deliveries_plane_body_idx ON webhook_deliveries (body_sha256) WHERE source = 'plane';
CREATE INDEX webhook_deliveries_received_idx ON webhook_deliveries (received_at);
