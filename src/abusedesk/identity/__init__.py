"""Users, API tokens and authentication (the model is in domain/identity.py)."""
