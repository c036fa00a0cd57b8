"""A transform loaded by path (path/to/file.py:function), not as a module."""

import base64
from typing import Any


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return {
        "records": [
            {
                "recordId": r["recordId"],
                "result": "Ok",
                "data": base64.b64encode(base64.b64decode(r["data"])[::-1]).decode(),
            }
            for r in event["records"]
        ]
    }
