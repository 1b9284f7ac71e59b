"""schemathesis hooks for scripts/contract: the CVC a customer would present.

An activation sends the certificate's CVC by SMS, never to the caller, so nothing in the API's
answers can give it to an authorization. scripts/contract points the ledger at `ledger
sms-simulator` (LEDGER_CONTRACT_SMS_URL is its base URL); before an authorization of a
certificate whose CVC the simulated phone received, this hook presents that CVC in place of a
generated one of the same shape (three digits). Any other body, a CVC of another shape included,
is sent as generated.
"""

import json
import os
import re
import time
import urllib.request

import schemathesis

SIMULATOR = os.environ.get("LEDGER_CONTRACT_SMS_URL", "")
# The default LEDGER_SMS_TEXT: "Gift certificate {code}: CVC {cvc}".
MESSAGE = re.compile(r"^Gift certificate (?P<code>[A-Za-z0-9_-]+): CVC (?P<cvc>[0-9]{3})$")
SHAPE = re.compile(r"^[0-9]{3}$")
# Certificates this run activated: their CVC may still be on its way.
activated: set[str] = set()


def received(code: str) -> str | None:
    with urllib.request.urlopen(f"{SIMULATOR}/messages", timeout=5) as response:
        messages = json.load(response)
    cvcs = [m.group("cvc") for m in (MESSAGE.match(x.get("text", "")) for x in messages) if m and m["code"] == code]
    return cvcs[-1] if cvcs else None


def cvc_of(code: str) -> str | None:
    deadline = time.monotonic() + (5.0 if code in activated else 0.0)
    while True:
        cvc = received(code)
        if cvc is not None or time.monotonic() >= deadline:
            return cvc
        time.sleep(0.05)


def is_authorize(case) -> bool:
    return case.operation.method.upper() == "POST" and case.operation.path == "/v1/certificates/{code}/authorize"


@schemathesis.hook
def before_call(context, case, kwargs):
    if not SIMULATOR or not is_authorize(case):
        return
    code = (case.path_parameters or {}).get("code")
    body = case.body
    if not isinstance(code, str) or not isinstance(body, dict) or not SHAPE.match(str(body.get("cvc", ""))):
        return
    cvc = cvc_of(code)
    if cvc is not None:
        body["cvc"] = cvc


@schemathesis.hook
def after_call(context, case, response):
    if (
        case.operation.method.upper() == "POST"
        and case.operation.path == "/v1/certificates/{code}/activate"
        and response.status_code == 200
    ):
        activated.add(str((case.path_parameters or {}).get("code")))
