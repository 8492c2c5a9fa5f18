"""Frame samplers: read cameras on a schedule and publish JPEG frames to Kafka."""
