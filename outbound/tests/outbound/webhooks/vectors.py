"""Standard Webhooks test vectors made by the reference library (PyPI `standardwebhooks`).

    python3 -m venv .ledger/venv && .ledger/venv/bin/pip install standardwebhooks==1.3.0
    .ledger/venv/bin/python outbound/tests/outbound/webhooks/vectors.py > outbound/tests/outbound/webhooks/vectors.json

made vectors.json (the Rust tests verify every message and sign each to the same signature).
With --check FILE it verifies FILE's messages with the library instead (scripts/webhooks-interop), at
each message's own time, and exits non-zero on the first that does not verify.
"""

import base64
import datetime
import json
import os
import sys
from importlib.metadata import version

import standardwebhooks
from standardwebhooks import webhooks as reference

# JSON bodies (the library's verify parses what it verified), byte for byte: whitespace, escapes
# and raw UTF-8 are part of what is signed.
BODIES = [
    b'{"type":"payout.settled","data":{"id":"po_1","amount_minor":12500}}',
    b"{}",
    "{\"text\": \"\u0441\u0435\u0440\u0442\u0438\u0444\u0438\u043a\u0430\u0442 \u20ac\"}".encode(),
    b'{\n  "line": "one\\ntwo. with dots.",\n  "escaped": "\\u20ac"\n}',
    b'[1, 2.50, "3", null, true]',
]


def make():
    cases = []
    for i, body in enumerate(BODIES):
        secret = "whsec_" + base64.b64encode(os.urandom(24 + 8 * i)).decode()
        msg_id = "msg_" + base64.b32encode(os.urandom(10)).decode().lower()
        timestamp = 1_700_000_000 + i * 86_401
        when = datetime.datetime.fromtimestamp(timestamp, tz=datetime.timezone.utc)
        signature = standardwebhooks.Webhook(secret).sign(msg_id, when, body)
        cases.append({
            "secret": secret,
            "id": msg_id,
            "timestamp": timestamp,
            "body_base64": base64.b64encode(body).decode(),
            "signature": signature,
        })
    json.dump({"library": f"standardwebhooks {version('standardwebhooks')} (PyPI)", "cases": cases},
              sys.stdout, indent=2)
    print()


def check(path):
    with open(path) as f:
        cases = json.load(f)["cases"]
    real = datetime.datetime
    for case in cases:
        at = real.fromtimestamp(case["timestamp"], tz=datetime.timezone.utc)

        class Frozen(real):
            @classmethod
            def now(cls, tz=None):
                return at

        reference.datetime = Frozen
        headers = {
            "webhook-id": case["id"],
            "webhook-timestamp": str(case["timestamp"]),
            "webhook-signature": case["signature"],
        }
        standardwebhooks.Webhook(case["secret"]).verify(base64.b64decode(case["body_base64"]), headers)
    reference.datetime = real
    print(f"{len(cases)} messages verified by standardwebhooks {version('standardwebhooks')}")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--check":
        check(sys.argv[2])
    else:
        make()
