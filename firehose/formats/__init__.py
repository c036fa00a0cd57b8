"""Record format conversion: JSON records into Parquet, ORC or Avro objects.

Leaves, one job each: `hive_types` parses column types, `timestamps` and `values` hold the
deserializers' rules, `json_arrow` turns a batch into an Arrow table, `parquet`, `orc` and
`avro` write it; `convert` is the one interface the S3 destination calls.
"""
