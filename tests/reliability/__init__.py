"""Reliability and security tests (issue 6): faults, crash safety, hostile input, secrets."""
