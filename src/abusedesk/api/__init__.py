"""The HTTP API: ``create_app(rt)`` builds the FastAPI application from routers and one error handler."""
