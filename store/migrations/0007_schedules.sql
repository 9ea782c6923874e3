-- Schedules: an Assignment started on a calendar (DESIGN §4 Schedule), and the record of
-- every slot fired, whose primary key is what keeps a slot from ever firing twice.
-- A schedule's team is its agent's team (no copy to go stale when an agent moves).

CREATE TABLE schedules (
    id                    TEXT PRIMARY KEY,
    agent_id              TEXT NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    user_id               TEXT REFERENCES users(id),
    enabled               INTEGER NOT NULL,
    frequency             TEXT NOT NULL CHECK (frequency IN ('every_5_minutes','every_15_minutes','hourly','daily','workday','weekly','monthly','custom')),
    time                  TEXT,
    timezone              TEXT NOT NULL,
    day                   TEXT,
    day_of_month          INTEGER,
    cron                  TEXT,
    recurring             INTEGER NOT NULL DEFAULT 1,
    message               TEXT NOT NULL DEFAULT '',
    -- Bumped on every change, so a fire computed from an older definition is refused.
    revision              INTEGER NOT NULL DEFAULT 1,
    -- Slots at or before this instant never fire: set at creation, when the timing
    -- changes and when the schedule is enabled, so no catch-up covers a time the
    -- schedule did not say what it says now.
    active_since          INTEGER NOT NULL,
    auto_disabled_at      INTEGER,
    auto_disabled_reason  TEXT,
    created_at            INTEGER NOT NULL,
    updated_at            INTEGER NOT NULL
);
CREATE INDEX schedules_agent ON schedules(agent_id, created_at);
CREATE INDEX schedules_enabled ON schedules(enabled);

CREATE TABLE schedule_fires (
    schedule_id    TEXT NOT NULL REFERENCES schedules(id) ON DELETE CASCADE,
    scheduled_for  INTEGER NOT NULL,
    run_id         TEXT,
    -- Why no run started for the slot (e.g. the assignment had no live setup).
    error          TEXT,
    fired_at       INTEGER NOT NULL,
    PRIMARY KEY (schedule_id, scheduled_for)
);
