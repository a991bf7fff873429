"""Writes of the orders app, one module per concern: orders, payments (Stripe and
settlement), refunds and the ledger."""
