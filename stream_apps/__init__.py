"""Stream apps: event-time windows over detection events, and their landing in
ClickHouse."""
