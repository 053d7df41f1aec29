#!/usr/bin/env python3
"""boto3 smoke test: the real `sesame` binary driven by real boto3.

Usage: python3 tests/boto3/smoke.py [PATH_TO_SESAME]   (default target/debug/sesame)

Starts the server on a free port in a temporary data directory, runs the identity and DKIM
operations through boto3's sesv2 client, and checks every answer. Exits non-zero on the first
failure, printing the server's output. CI runs it with the latest boto3 from PyPI.
"""
import base64
import datetime
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time

import boto3
import botocore.config
import botocore.exceptions

KEY_ID = "AKIASMOKETEST0000001"
SECRET = "smoke-secret-key-000000000000000000000000"
TOKEN = re.compile(r"^[a-z2-7]{32}$")


class Server:
    """The sesame process, with its output collected by a reader thread."""

    def __init__(self, binary, data_dir):
        env = dict(os.environ, SESAME_ACCESS_KEY_ID=KEY_ID, SESAME_SECRET_ACCESS_KEY=SECRET)
        env.pop("SESAME_MASTER_KEY", None)
        self.proc = subprocess.Popen(
            [binary, "serve", "--data-dir", data_dir, "--api-addr", "127.0.0.1:0",
             "--dns-addr", "127.0.0.1:0"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=env, text=True,
        )
        self.lines = []
        self.ready = threading.Event()
        self.api = self.account = None
        threading.Thread(target=self._read, daemon=True).start()
        if not self.ready.wait(30):
            self.stop()
            raise SystemExit("sesame did not print 'listening api=' within 30 s:\n" + self.output())

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line)
            m = re.search(r"account=(\d{12})", line)
            if m:
                self.account = m.group(1)
            m = re.search(r"listening api=(\S+)", line)
            if m:
                self.api = m.group(1)
                self.ready.set()

    def output(self):
        return "".join(self.lines)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def ok(what):
    print(f"ok  {what}")


def expect_error(call, code, status, what):
    """Runs `call`, which must fail with the AWS error `code` and HTTP `status`."""
    try:
        call()
    except botocore.exceptions.ClientError as e:
        got = (e.response["Error"]["Code"], e.response["ResponseMetadata"]["HTTPStatusCode"])
        assert got == (code, status), f"{what}: expected {(code, status)}, got {got}: {e}"
        ok(f"{what} -> {code} {status}")
        return e
    raise AssertionError(f"{what}: expected {code}, the call succeeded")


def rsa_key_b64(bits):
    """A fresh RSA key as SES wants it: base64 DER body, no PEM lines."""
    pem = subprocess.run(["openssl", "genrsa", str(bits)], check=True, capture_output=True).stdout
    der = subprocess.run(["openssl", "rsa", "-outform", "DER"], input=pem, check=True,
                         capture_output=True).stdout
    return base64.b64encode(der).decode(), pem.decode()


def run(ses, account):
    domain = "smoke.example.com"
    out = ses.create_email_identity(EmailIdentity=domain, Tags=[{"Key": "env", "Value": "ci"}])
    dkim = out["DkimAttributes"]
    assert out["IdentityType"] == "DOMAIN" and out["VerifiedForSendingStatus"] is False, out
    assert dkim["Status"] == "PENDING", dkim
    assert dkim["SigningAttributesOrigin"] == "AWS_SES", dkim
    assert dkim["NextSigningKeyLength"] == "RSA_2048_BIT", dkim
    assert dkim["CurrentSigningKeyLength"] == "RSA_2048_BIT", dkim
    assert isinstance(dkim["LastKeyGenerationTimestamp"], datetime.datetime), dkim
    tokens = dkim["Tokens"]
    assert len(tokens) == 3 and all(TOKEN.match(t) for t in tokens), tokens
    ok("create Easy DKIM domain: PENDING, three [a-z2-7]{32} tokens, RSA-2048")

    got = ses.get_email_identity(EmailIdentity=domain)
    assert got["DkimAttributes"]["Tokens"] == tokens, got
    assert {"Key": "env", "Value": "ci"} in got["Tags"], got
    assert got["FeedbackForwardingStatus"] is True and got["VerificationStatus"] == "PENDING", got
    ok("get domain: same tokens, tags, feedback on, PENDING")

    address = "Smoke.User+tag@example.com"
    out = ses.create_email_identity(EmailIdentity=address)
    assert out["IdentityType"] == "EMAIL_ADDRESS" and "DkimAttributes" not in out, out
    assert ses.get_email_identity(EmailIdentity=address)["IdentityType"] == "EMAIL_ADDRESS"
    ok("create and get an address identity with '+' and capitals")
    e = expect_error(lambda: ses.get_email_identity(EmailIdentity="smoke.user+tag@example.com"),
                     "NotFoundException", 404, "addresses are case-sensitive")
    assert isinstance(e, ses.exceptions.NotFoundException)

    key, pem = rsa_key_b64(1024)
    out = ses.put_email_identity_dkim_signing_attributes(
        EmailIdentity=domain, SigningAttributesOrigin="EXTERNAL",
        SigningAttributes={"DomainSigningSelector": "smoke1", "DomainSigningPrivateKey": key})
    assert out["DkimStatus"] == "PENDING", out
    before = ses.get_email_identity(EmailIdentity=domain)
    assert before["DkimAttributes"]["SigningAttributesOrigin"] == "EXTERNAL", before
    ok("switch to BYODKIM with a 1024-bit key")
    for bad, what in [("notakey", "garbage key"), (pem, "PEM with headers")]:
        expect_error(lambda: ses.put_email_identity_dkim_signing_attributes(
            EmailIdentity=domain, SigningAttributesOrigin="EXTERNAL",
            SigningAttributes={"DomainSigningSelector": "smoke2", "DomainSigningPrivateKey": bad}),
            "BadRequestException", 400, what)
    after = ses.get_email_identity(EmailIdentity=domain)
    assert after["DkimAttributes"] == before["DkimAttributes"], (before, after)
    ok("refused keys changed nothing")

    names, token, pages = [], None, 0
    while True:
        kwargs = {"PageSize": 1}
        if token:
            kwargs["NextToken"] = token
        page = ses.list_email_identities(**kwargs)
        pages += 1
        names += [i["IdentityName"] for i in page["EmailIdentities"]]
        token = page.get("NextToken")
        if not token:
            break
    assert sorted(names) == sorted([domain, address]) and len(names) == 2, names
    ok(f"list with PageSize=1 over {pages} pages: each identity once")
    first = ses.list_email_identities(PageSize=1)["NextToken"]
    tampered = first[:-3] + ("A" if first[-3] != "A" else "B") + first[-2:]
    expect_error(lambda: ses.list_email_identities(NextToken=tampered),
                 "BadRequestException", 400, "tampered NextToken")

    expect_error(lambda: ses.create_email_identity(EmailIdentity=domain),
                 "AlreadyExistsException", 400, "duplicate create")
    expect_error(lambda: ses.delete_email_identity(EmailIdentity="nope.example.com"),
                 "NotFoundException", 404, "delete unknown")

    arn = f"arn:aws:ses:us-east-1:{account}:identity/{domain}"
    ses.tag_resource(ResourceArn=arn, Tags=[{"Key": "team", "Value": "mail"}])
    tags = ses.list_tags_for_resource(ResourceArn=arn)["Tags"]
    assert sorted(t["Key"] for t in tags) == ["env", "team"], tags
    ses.untag_resource(ResourceArn=arn, TagKeys=["env"])
    assert ses.list_tags_for_resource(ResourceArn=arn)["Tags"] == [{"Key": "team", "Value": "mail"}]
    ok("tag, list and untag an identity ARN")

    ses.put_email_identity_feedback_attributes(EmailIdentity=domain, EmailForwardingEnabled=False)
    ses.put_email_identity_dkim_attributes(EmailIdentity=domain, SigningEnabled=False)
    got = ses.get_email_identity(EmailIdentity=domain)
    assert got["FeedbackForwardingStatus"] is False, got
    assert got["DkimAttributes"]["SigningEnabled"] is False, got
    assert got["DkimAttributes"]["Status"] == "PENDING", got
    ok("feedback and DKIM signing flags")

    e = expect_error(lambda: ses.get_account(), "UnsupportedOperationException", 501,
                     "unsupported operation")
    assert "GetAccount" in e.response["Error"]["Message"], e.response

    for name in (domain, address):
        ses.delete_email_identity(EmailIdentity=name)
        expect_error(lambda: ses.get_email_identity(EmailIdentity=name),
                     "NotFoundException", 404, f"get after delete of {name}")


def main():
    binary = sys.argv[1] if len(sys.argv) > 1 else "target/debug/sesame"
    print(f"boto3 {boto3.__version__}, binary {binary}")
    with tempfile.TemporaryDirectory() as data_dir:
        server = Server(binary, data_dir)
        try:
            ses = boto3.client(
                "sesv2", endpoint_url=f"http://{server.api}", region_name="us-east-1",
                aws_access_key_id=KEY_ID, aws_secret_access_key=SECRET,
                config=botocore.config.Config(retries={"max_attempts": 2, "mode": "standard"}),
            )
            started = time.monotonic()
            run(ses, server.account)
            print(f"boto3 smoke test passed in {time.monotonic() - started:.1f} s")
        except BaseException:
            print("---- sesame output ----\n" + server.output(), file=sys.stderr)
            raise
        finally:
            server.stop()


if __name__ == "__main__":
    main()
