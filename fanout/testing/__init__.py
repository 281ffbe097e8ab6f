"""In-memory fakes for tests: never shipped to Lambda."""
