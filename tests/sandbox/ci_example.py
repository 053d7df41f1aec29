#!/usr/bin/env python3
"""The README's "Use Sesame in CI" example, run by the test suite against `sesame dev`.

It reads nothing but the environment `sesame dev` prints (AWS_ENDPOINT_URL_SESV2,
AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION): boto3 finds the endpoint by itself.
A domain is created, verified through the sandbox's DNS, mail is sent from it and read back
from the sandbox's outbox with its DKIM result. Exits 0 when all of that holds.
"""
import base64
import json
import os
import subprocess
import time
import urllib.request

import boto3

ses = boto3.client("sesv2")  # endpoint, credentials and region from the environment
endpoint = os.environ["AWS_ENDPOINT_URL_SESV2"]

# Easy DKIM, and Bring Your Own DKIM with a key made here (openssl: PKCS#1 DER, base64).
key = subprocess.run(
    "openssl genrsa 2048 2>/dev/null | openssl rsa -outform DER 2>/dev/null",
    shell=True, check=True, capture_output=True,
).stdout
ses.create_email_identity(EmailIdentity="ci.example.com")
ses.create_email_identity(
    EmailIdentity="byo.ci.example.net",
    DkimSigningAttributes={
        "DomainSigningSelector": "ci",
        "DomainSigningPrivateKey": base64.b64encode(key).decode(),
    },
)
deadline = time.time() + 10
for domain in ["ci.example.com", "byo.ci.example.net"]:
    while ses.get_email_identity(EmailIdentity=domain)["VerificationStatus"] != "SUCCESS":
        assert time.time() < deadline, f"{domain} did not verify within 10 s"
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
print(f"ci_example: ci.example.com and byo.ci.example.net verified, {message_id} signed and DKIM pass")
