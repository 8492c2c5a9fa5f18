"""What runs the engines: the embedded Kafka launcher, ports, cluster files."""
