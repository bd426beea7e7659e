"""The client's webhook verifier accepts what the reference Standard Webhooks library signs."""

from __future__ import annotations

import datetime as dt
import uuid

from standardwebhooks.webhooks import Webhook

from service.client import verify_webhook
from service.webhooks.signing import new_secret


def test_the_helper_accepts_what_the_reference_library_signs() -> None:
    secret = new_secret()
    body = (
        b'{"type":"company_registered","timestamp":"2023-10-20T08:00:00.000000Z","data":'
        b'{"event_id":"' + str(uuid.uuid4()).encode() + b'","type":"company_registered",'
        b'"stream":"company:x","stream_version":1,"position":1,"effective_date":"2019-01-01",'
        b'"recorded_at":"2023-10-20T08:00:00.000000Z","source":{"name":"s"},'
        b'"data":{"company_id":"x"},"hash":"00"}}'
    )
    now = dt.datetime.now(dt.UTC)
    signature = Webhook(secret).sign("msg_1", now, body.decode())
    headers = {
        "Webhook-Id": "msg_1",
        "Webhook-Timestamp": str(int(now.timestamp())),
        "Webhook-Signature": f"v1,bm90IHRoaXMgb25l {signature}",  # a stale one first
    }
    assert verify_webhook(secret, body, headers).data.position == 1
