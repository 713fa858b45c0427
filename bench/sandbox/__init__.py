"""Throughput ceiling of the platform sandbox against a bare ASGI app on the same server stack."""
