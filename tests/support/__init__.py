"""Test support: fake plugins, contracts and servicers without logic, databases, and
bounded waits for conditions."""
