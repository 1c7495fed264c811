"""REST gateway for web and mobile clients."""
