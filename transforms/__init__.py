"""Record processors (the Lambda transform contract and the built-in processors).

Processors run between the write-ahead log and the destination buffers; none exist yet.
"""
