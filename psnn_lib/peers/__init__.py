"""Peer tools: other libraries' conversions, run on this project's networks and
images so that the book compares PS with what a user would actually pick."""
