-- Notifications (DESIGN §8): the leader turns new task_events into one job per channel
-- (Telegram message, Plane comment). The cursor remembers the last event turned into jobs.

CREATE TABLE notification_cursor (
    name          text PRIMARY KEY,        -- 'task_events'
    last_event_id bigint NOT NULL,
    updated_at    timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE notification_cursor IS 'Last task_events id turned into notification jobs.';
