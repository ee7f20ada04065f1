"""Kafka plumbing: connecting (security, clear errors), topic administration, the local broker
for development and tests, and the patches faust-streaming 0.15.3 needs."""
