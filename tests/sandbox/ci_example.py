#!/usr/bin/env python3
"""The README's "Use Sesame in CI" example, run by the test suite against `sesame dev`.

It reads nothing but the environment `sesame dev` prints (AWS_ENDPOINT_URL_SESV2,
AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION): boto3 finds the endpoint by itself.
A domain is created, verified through the sandbox's DNS, mail is sent from it and read back
from the sandbox's outbox with its DKIM result. Exits 0 when all of that holds.
"""
import json
import os
import time
import urllib.request

import boto3

ses = boto3.client("sesv2")  # endpoint, credentials and region from the environment
endpoint = os.environ["AWS_ENDPOINT_URL_SESV2"]

ses.create_email_identity(EmailIdentity="ci.example.com")
deadline = time.time() + 10
while ses.get_email_identity(EmailIdentity="ci.example.com")["VerificationStatus"] != "SUCCESS":
    assert time.time() < deadline, "ci.example.com did not verify within 10 s"
    time.sleep(0.2)

sent = ses.send_email(
    FromEmailAddress="app@ci.example.com",
    Destination={"ToAddresses": ["success@simulator.amazonses.com"]},
    Content={"Simple": {"Subject": {"Data": "hello from CI"}, "Body": {"Text": {"Data": "hi"}}}},
)
message_id = sent["MessageId"]
with urllib.request.urlopen(f"{endpoint}/sandbox/messages/{message_id}") as r:
    message = json.load(r)
assert message["Subject"] == "hello from CI", message
assert message["Dkim"]["Result"] == "pass", message["Dkim"]
assert message["Simulator"] == [
    {"Recipient": "success@simulator.amazonses.com", "Outcome": "delivered"}
], message["Simulator"]
print(f"ci_example: ci.example.com verified, {message_id} signed and DKIM pass")
