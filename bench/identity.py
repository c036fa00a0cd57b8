"""The identity transform of the transform benchmark: decode each record, encode it again, Ok."""

from __future__ import annotations

import base64
from typing import Any


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return {
        "records": [
            {
                "recordId": record["recordId"],
                "result": "Ok",
                "data": base64.b64encode(base64.b64decode(record["data"])).decode(),
            }
            for record in event["records"]
        ]
    }
