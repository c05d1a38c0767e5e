"""AI Platform: turn one Linux GPU box into a private AI platform, and show every change before it is applied."""

__version__ = "0.2.0"
