"""Test support: fake plugins and contracts, databases, and bounded waits for conditions."""
