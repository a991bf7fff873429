"""Orders, payments, the wallet and the ledger: built with the orders issue."""
