-- What the model reported for a run's turns, summed (Ollama's total_duration,
-- load_duration, prompt_eval_duration and eval_duration, in ms), and how many model
-- calls the run made: model_ms minus total_duration_ms is what transport and streaming
-- cost on top of the model's own work.
ALTER TABLE runs ADD COLUMN model_turns INTEGER NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN total_duration_ms INTEGER NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN load_duration_ms INTEGER NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN prompt_eval_duration_ms INTEGER NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN eval_duration_ms INTEGER NOT NULL DEFAULT 0;
