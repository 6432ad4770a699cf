"""A stand-in for the national public-service portal's extract API (see server.py)."""
