"""ChatSupport: a self-hosted AI customer-support appliance."""

__version__ = "0.1.0"
