"""schemathesis hooks for hookd (loaded by .ci/schemathesis).

`Idempotency-Key` is stateful: a repeat of a key replays the first successful
response, whatever the new body says. A fuzzer that draws the same short key twice
would see a replay it cannot expect, so every well-formed key is made unique just
before the request is sent (in every phase); malformed ones are left as they are, so
their 400 is still tested.
"""
import re
import uuid

import schemathesis

WELL_FORMED = re.compile(r"^[A-Za-z0-9_:.-]{1,255}$")


@schemathesis.hook
def before_call(ctx, case, **kwargs):
    headers = case.headers or {}
    for name in list(headers):
        if name.lower() == "idempotency-key" and WELL_FORMED.match(str(headers[name])):
            headers[name] = uuid.uuid4().hex
