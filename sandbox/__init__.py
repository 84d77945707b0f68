"""Local stand-ins for external services (Slack), for tests and the demo."""
