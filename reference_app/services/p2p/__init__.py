"""P2P trading: offers, trades with an explicit state machine, escrow through the wallet."""
