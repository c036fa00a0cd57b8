"""Sources other than the API: the Kinesis reader, its leases and checkpoints."""
