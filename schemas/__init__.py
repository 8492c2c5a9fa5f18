"""The contracts every Pantau stage shares: Avro schemas, topics and their codec."""
