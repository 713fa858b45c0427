"""Ingest: the stateless HTTP front door that verifies webhooks, normalizes them into Update records
and hands them to the producer. The pure (sans-IO) part lives in `botstream.ingest.platforms`."""
