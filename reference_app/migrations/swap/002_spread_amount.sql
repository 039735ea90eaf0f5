-- What the spread earns the platform on a quote, in the bought currency: the amount at the
-- market price less the amount the user gets at the quoted rate. Booked to the platform's
-- revenue when the quote is executed, like the fee. Quotes made before this was recorded
-- booked none.
ALTER TABLE swap.quotes ADD COLUMN spread_amount numeric NOT NULL DEFAULT 0
    CHECK (spread_amount >= 0);
