"""Writes of the orders app, one module per concern: orders, payments (Stripe and
settlement), refunds, the ledger, the coin wallet and top-ups, gifts (the coins that
move), and giveaway prize claims (the orders they create)."""
