-- Background: the price feed's history. The latest prices live in each worker's memory
-- (reading one needs no database); this is the record of what the source said and when.
-- The jobs change other services' rows through those services: they own no table here.

-- One row per pair per successful poll. as_of: when the source observed the price;
-- fetched_at: when the feed received it. Kept price_history_seconds, then pruned by a job.
CREATE TABLE background.price_history (
    id          bigserial PRIMARY KEY,
    pair        text NOT NULL CHECK (pair ~ '^[A-Z0-9]{2,10}-[A-Z0-9]{2,10}$'),
    price       numeric(38, 18) NOT NULL CHECK (price > 0),
    as_of       timestamptz NOT NULL,
    fetched_at  timestamptz NOT NULL
);
CREATE INDEX price_history_pair ON background.price_history (pair, as_of DESC);
CREATE INDEX price_history_fetched ON background.price_history (fetched_at);
