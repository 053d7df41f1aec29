#!/usr/bin/env python3
"""boto3 smoke test: the real `sesame` binary driven by real boto3.

Usage: python3 tests/boto3/smoke.py [PATH_TO_SESAME]   (default <repo>/target/debug/sesame)
Needs: boto3 (tests/boto3/requirements.txt) and the `openssl` command (for a BYODKIM key).

Starts `sesame serve` on free ports in a temporary data directory, runs the identity, DKIM and
tagging operations through boto3's sesv2 client, and checks every answer. Prints `ok  <check>`
per check; on the first failure prints `FAIL <reason>` and the server's output and exits 1.
CI (.ci/run) runs it with the latest boto3 from PyPI.
"""
import base64
import datetime
import http.client
import json
import os
import pathlib
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback

import boto3
import botocore.auth
import botocore.config
import botocore.exceptions

KEY_ID = "AKIASMOKETEST0000001"
SECRET = "smoke-secret-key-000000000000000000000000"
REGION = "us-east-1"
TOKEN = re.compile(r"^[a-z2-7]{32}$")
REPO = pathlib.Path(__file__).resolve().parent.parent.parent

CHECKS = 0


class CheckFailed(Exception):
    pass


def outbox_to(data_dir, to):
    """Every outbox message whose To: is `to`, oldest first."""
    outbox = pathlib.Path(data_dir) / "outbox"
    files = sorted(outbox.glob("*.eml"), key=lambda p: (p.stat().st_mtime_ns, p.name))
    texts = [p.read_text() for p in files]
    return [t for t in texts if f"To: <{to}>" in t.splitlines() or f"To: {to}" in t.splitlines()]


def link_token(message, base):
    """The one verification link token under `base` in a message (quoted-printable undone)."""
    text = message.replace("=\r\n", "").replace("=\n", "")
    found = set(re.findall(re.escape(base) + r"/verify/([A-Za-z0-9_-]{43})", text))
    check(len(found) == 1, f"expected one link under {base}: {found}\n{message}")
    return found.pop()


def follow(endpoint, method, token):
    """A browser's GET or POST of the link: (status, Location, body); redirects not followed."""
    host = endpoint.split("//", 1)[1]
    conn = http.client.HTTPConnection(host, timeout=10)
    conn.request(method, f"/verify/{token}", body=b"" if method == "POST" else None,
                 headers={"Content-Type": "application/x-www-form-urlencoded"})
    r = conn.getresponse()
    out = (r.status, r.getheader("Location"), r.read().decode())
    conn.close()
    return out


def check(condition, what):
    """A failed check: unlike `assert`, never compiled away by `python -O`."""
    if not condition:
        raise CheckFailed(what)


def ok(what):
    global CHECKS
    CHECKS += 1
    print(f"ok  {what}", flush=True)


class Server:
    """The sesame process; a reader thread collects its output so the pipe never fills up."""

    def __init__(self, binary, data_dir):
        # Inherited SESAME_* settings (a database URL, a master key, an outbox, rate limits)
        # would make the run depend on the caller's shell; keep only the log filter.
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("SESAME_") or k == "SESAME_LOG"}
        env.update(SESAME_ACCESS_KEY_ID=KEY_ID, SESAME_SECRET_ACCESS_KEY=SECRET)
        # stderr joins stdout: the start-up lines are on stdout, logs and errors on stderr, and
        # one stream keeps their order when we print it after a failure.
        self.proc = subprocess.Popen(
            [binary, "serve", "--data-dir", data_dir,
             "--api-addr", "127.0.0.1:0", "--dns-addr", "127.0.0.1:0",
             "--admin-addr", "127.0.0.1:0"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=env, text=True, errors="replace",
        )
        self.lines = []
        self.api = self.account = None
        self.ready = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()
        # `ready` is also set at end of output, so a server that dies early fails at once
        # rather than after the full 30 s.
        if not self.ready.wait(30) or self.api is None:
            self.stop()
            raise SystemExit("FAIL sesame did not print 'listening api=' within 30 s "
                             f"(exit status {self.proc.poll()}); its output:\n{self.output()}")

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line)
            # The account id has no API of its own; `serve` prints `default account=<id>`
            # before it listens, and tag ARNs need it.
            m = re.search(r"account=(\d{12})", line)
            if m and self.account is None:
                self.account = m.group(1)
            m = re.search(r"listening api=(\S+)", line)
            if m and self.api is None:
                self.api = m.group(1)
                self.ready.set()
        self.ready.set()

    def output(self):
        return "".join(self.lines)

    def stop(self):
        """SIGTERM, up to 10 s for a graceful exit, then SIGKILL. Returns the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def expect_error(call, code, status, what):
    """Runs `call`, which must fail with the AWS error `code` and HTTP `status`."""
    try:
        call()
    except botocore.exceptions.ClientError as e:
        got = (e.response["Error"]["Code"], e.response["ResponseMetadata"]["HTTPStatusCode"])
        check(got == (code, status), f"{what}: expected {(code, status)}, got {got}: {e}")
        ok(f"{what} -> {code} {status}")
        return e
    raise CheckFailed(f"{what}: expected {code} {status}, but the call succeeded")


def rsa_key_b64(bits):
    """A fresh RSA key as SES takes it (base64 of the DER, no PEM lines), and its PEM form."""
    pem = subprocess.run(["openssl", "genrsa", str(bits)],
                         check=True, capture_output=True).stdout
    der = subprocess.run(["openssl", "rsa", "-outform", "DER"],
                         input=pem, check=True, capture_output=True).stdout
    return base64.b64encode(der).decode(), pem.decode()


def list_all(ses):
    """Every identity name, one page of one item at a time; checks the shape of each page."""
    names, token = [], None
    for pages in range(1, 11):  # a server that never stops paging must not hang the test
        kwargs = {"PageSize": 1}
        if token:
            kwargs["NextToken"] = token
        page = ses.list_email_identities(**kwargs)
        items = page["EmailIdentities"]
        check(len(items) <= 1, f"PageSize=1 returned {len(items)} items: {page}")
        names += [i["IdentityName"] for i in items]
        token = page.get("NextToken")
        if not token:
            return names, pages
    raise CheckFailed(f"list_email_identities still paging after 10 pages: {names}")


def run(ses, account, binary, data_dir):
    domain = "smoke.example.com"
    address = "Smoke.User+tag@example.com"

    # --- Easy DKIM domain ---
    out = ses.create_email_identity(EmailIdentity=domain, Tags=[{"Key": "env", "Value": "ci"}])
    check(out["IdentityType"] == "DOMAIN", out)
    check(out["VerifiedForSendingStatus"] is False, out)
    dkim = out["DkimAttributes"]
    check(dkim["Status"] == "PENDING", dkim)
    check(dkim["SigningAttributesOrigin"] == "AWS_SES", dkim)
    check(dkim["NextSigningKeyLength"] == "RSA_2048_BIT", dkim)
    check(dkim["CurrentSigningKeyLength"] == "RSA_2048_BIT", dkim)
    # boto3 only yields a datetime if the server sent a timestamp it could parse.
    check(isinstance(dkim["LastKeyGenerationTimestamp"], datetime.datetime), dkim)
    tokens = dkim["Tokens"]
    check(len(tokens) == 3 and all(TOKEN.match(t) for t in tokens), tokens)
    ok("create Easy DKIM domain: PENDING, three [a-z2-7]{32} tokens, RSA-2048")

    got = ses.get_email_identity(EmailIdentity=domain)
    check(got["DkimAttributes"]["Tokens"] == tokens, got)
    check({"Key": "env", "Value": "ci"} in got["Tags"], got)
    check(got["FeedbackForwardingStatus"] is True, got)
    check(got["VerificationStatus"] == "PENDING", got)
    ok("get domain: same tokens, env=ci tag, feedback forwarding on, PENDING")

    # --- address identity: '+' must survive the URI label, case must be preserved ---
    out = ses.create_email_identity(EmailIdentity=address)
    check(out["IdentityType"] == "EMAIL_ADDRESS", out)
    check("DkimAttributes" not in out, out)
    ok("create address identity: EMAIL_ADDRESS, no DkimAttributes")
    got = ses.get_email_identity(EmailIdentity=address)
    check(got["IdentityType"] == "EMAIL_ADDRESS", got)
    ok("get address identity by its exact name")
    e = expect_error(lambda: ses.get_email_identity(EmailIdentity=address.lower()),
                     "NotFoundException", 404, "get address in lower case")
    check(isinstance(e, ses.exceptions.NotFoundException), type(e))
    ok("the error is boto3's modeled NotFoundException")

    # --- the address's verification mail: GET shows, POST verifies ---
    endpoint = ses.meta.endpoint_url
    mails = outbox_to(data_dir, address)
    check(len(mails) == 1, f"expected one verification mail to {address}, got {len(mails)}")
    token = link_token(mails[0], endpoint)
    status, _, body = follow(endpoint, "GET", token)
    check(status == 200 and 'method="post"' in body, (status, body))
    check(ses.get_email_identity(EmailIdentity=address)["VerificationStatus"] == "PENDING",
          "a GET verified the address")
    status, _, body = follow(endpoint, "POST", token[:-1] + ("A" if token[-1] != "A" else "Q"))
    check(status == 404, f"a tampered link: {status}")
    status, _, body = follow(endpoint, "POST", token)
    check(status == 200 and "Address verified" in body, (status, body))
    got = ses.get_email_identity(EmailIdentity=address)
    check(got["VerificationStatus"] == "SUCCESS" and got["VerifiedForSendingStatus"] is True, got)
    check(isinstance(got["VerificationInfo"].get("LastSuccessTimestamp"), datetime.datetime), got)
    ok("the address's mailed link: GET shows a button, a tampered one is 404, POST verifies")

    # --- BYODKIM ---
    key, pem = rsa_key_b64(1024)
    out = ses.put_email_identity_dkim_signing_attributes(
        EmailIdentity=domain, SigningAttributesOrigin="EXTERNAL",
        SigningAttributes={"DomainSigningSelector": "smoke1", "DomainSigningPrivateKey": key})
    check(out["DkimStatus"] == "PENDING", out)
    before = ses.get_email_identity(EmailIdentity=domain)
    check(before["DkimAttributes"]["SigningAttributesOrigin"] == "EXTERNAL", before)
    ok("switch the domain to BYODKIM with a 1024-bit key")
    for bad, what in [("notakey", "BYODKIM with a garbage key"),
                      (pem, "BYODKIM with a PEM key (headers included)")]:
        expect_error(lambda: ses.put_email_identity_dkim_signing_attributes(
            EmailIdentity=domain, SigningAttributesOrigin="EXTERNAL",
            SigningAttributes={"DomainSigningSelector": "smoke2",
                               "DomainSigningPrivateKey": bad}),
            "BadRequestException", 400, what)
    after = ses.get_email_identity(EmailIdentity=domain)
    check(after["DkimAttributes"] == before["DkimAttributes"], (before, after))
    ok("refused keys changed nothing")

    # --- pagination ---
    first = ses.list_email_identities(PageSize=1)
    check(len(first["EmailIdentities"]) == 1 and first.get("NextToken"), first)
    ok("list with PageSize=1: one item and a NextToken")
    names, pages = list_all(ses)
    check(sorted(names) == sorted([domain, address]), names)
    ok(f"following NextToken over {pages} pages yields each identity exactly once")
    # Flip a character in the middle: any base64 flavour decodes it to different bytes
    # (the last character may only carry padding bits).
    token = first["NextToken"]
    mid = len(token) // 2
    tampered = token[:mid] + ("A" if token[mid] != "A" else "B") + token[mid + 1:]
    expect_error(lambda: ses.list_email_identities(NextToken=tampered),
                 "BadRequestException", 400, "list with a tampered NextToken")

    # --- duplicates and unknowns ---
    expect_error(lambda: ses.create_email_identity(EmailIdentity=domain),
                 "AlreadyExistsException", 400, "create a duplicate")
    expect_error(lambda: ses.delete_email_identity(EmailIdentity="nope.example.com"),
                 "NotFoundException", 404, "delete an unknown identity")

    # --- tags ---
    check(account, "the server printed no `account=<12 digits>` line before listening")
    arn = f"arn:aws:ses:{REGION}:{account}:identity/{domain}"
    ses.tag_resource(ResourceArn=arn, Tags=[{"Key": "team", "Value": "mail"}])
    tags = ses.list_tags_for_resource(ResourceArn=arn)["Tags"]
    check(sorted((t["Key"], t["Value"]) for t in tags) == [("env", "ci"), ("team", "mail")], tags)
    ok("tag_resource adds team=mail beside env=ci")
    ses.untag_resource(ResourceArn=arn, TagKeys=["env"])
    tags = ses.list_tags_for_resource(ResourceArn=arn)["Tags"]
    check(tags == [{"Key": "team", "Value": "mail"}], tags)
    ok("untag_resource removes env")

    # --- attribute updates ---
    ses.put_email_identity_feedback_attributes(EmailIdentity=domain, EmailForwardingEnabled=False)
    got = ses.get_email_identity(EmailIdentity=domain)
    check(got["FeedbackForwardingStatus"] is False, got)
    ok("feedback forwarding off")
    ses.put_email_identity_mail_from_attributes(
        EmailIdentity=domain, MailFromDomain=f"bounce.{domain}", BehaviorOnMxFailure="REJECT_MESSAGE")
    mf = ses.get_email_identity(EmailIdentity=domain)["MailFromAttributes"]
    check(mf == {"MailFromDomain": f"bounce.{domain}", "MailFromDomainStatus": "PENDING",
                 "BehaviorOnMxFailure": "REJECT_MESSAGE"}, mf)
    expect_error(lambda: ses.put_email_identity_mail_from_attributes(
        EmailIdentity=domain, MailFromDomain="bounce.example.org"),
        "BadRequestException", 400, "a MAIL FROM domain outside the identity's domain")
    ses.put_email_identity_mail_from_attributes(EmailIdentity=domain)
    mf = ses.get_email_identity(EmailIdentity=domain)["MailFromAttributes"]
    check(mf == {"BehaviorOnMxFailure": "USE_DEFAULT_VALUE"}, mf)
    ok("mail from: set (PENDING, REJECT_MESSAGE), refused outside the domain, removed")

    # --- custom verification email templates ---
    tpl = dict(FromEmailAddress=f"verify@{domain}", TemplateSubject="Confirm your address",
               TemplateContent="<p>Click to confirm.</p>",
               SuccessRedirectionURL="https://app.example.com/ok",
               FailureRedirectionURL="https://app.example.com/no")
    ses.create_custom_verification_email_template(TemplateName="smoke-welcome", **tpl,
                                                  Tags=[{"Key": "team", "Value": "growth"}])
    got = ses.get_custom_verification_email_template(TemplateName="smoke-welcome")
    check(all(got[k] == v for k, v in tpl.items()) and got["TemplateName"] == "smoke-welcome"
          and got["Tags"] == [{"Key": "team", "Value": "growth"}], got)
    listed = ses.list_custom_verification_email_templates(PageSize=10)["CustomVerificationEmailTemplates"]
    check([t["TemplateName"] for t in listed] == ["smoke-welcome"]
          and "TemplateContent" not in listed[0], listed)
    ses.update_custom_verification_email_template(TemplateName="smoke-welcome",
                                                  **dict(tpl, TemplateSubject="Please confirm"))
    got = ses.get_custom_verification_email_template(TemplateName="smoke-welcome")
    check(got["TemplateSubject"] == "Please confirm" and got["Tags"], got)
    ok("custom verification template: create, get, list, update (tags kept)")
    expect_error(lambda: ses.create_custom_verification_email_template(TemplateName="smoke-welcome", **tpl),
                 "AlreadyExistsException", 400, "a template name taken")
    expect_error(lambda: ses.create_custom_verification_email_template(
        TemplateName="bad name", **tpl), "BadRequestException", 400, "a template name with a space")
    expect_error(lambda: ses.create_custom_verification_email_template(
        TemplateName="bad-url", **dict(tpl, SuccessRedirectionURL="app.example.com")),
        "BadRequestException", 400, "a redirection URL that is not absolute")
    expect_error(lambda: ses.list_custom_verification_email_templates(PageSize=51),
                 "BadRequestException", 400, "a template page of 51")
    # SendCustomVerificationEmail: refusals, then a template from the verified address.
    expect_error(lambda: ses.send_custom_verification_email(
        EmailAddress="friend@example.net", TemplateName="nope"),
        "NotFoundException", 404, "send_custom_verification_email with an unknown template")
    expect_error(lambda: ses.send_custom_verification_email(
        EmailAddress="friend@example.net", TemplateName="smoke-welcome"),
        "MessageRejected", 400, "send_custom_verification_email from an unverified sender")
    expect_error(lambda: ses.send_custom_verification_email(
        EmailAddress="no-at-sign", TemplateName="smoke-welcome"),
        "BadRequestException", 400, "send_custom_verification_email to a bad address")
    expect_error(lambda: ses.get_email_identity(EmailIdentity="friend@example.net"),
                 "NotFoundException", 404, "refused sends created no identity")
    ses.create_custom_verification_email_template(
        TemplateName="smoke-own", **dict(tpl, FromEmailAddress=address, TemplateSubject="Join us"))
    sent = ses.send_custom_verification_email(EmailAddress="friend@example.net",
                                              TemplateName="smoke-own")
    check(re.match(r"^[0-9a-f-]{36}$", sent["MessageId"]), sent)
    mails = outbox_to(data_dir, "friend@example.net")
    check(len(mails) == 1 and "Subject: Join us" in mails[0].splitlines(), mails)
    check(ses.get_email_identity(EmailIdentity="friend@example.net")["VerificationStatus"]
          == "PENDING", "SendCustomVerificationEmail creates the identity")
    status, location, _ = follow(endpoint, "POST", link_token(mails[0], endpoint))
    check((status, location) == (303, "https://app.example.com/ok"), (status, location))
    check(ses.get_email_identity(EmailIdentity="friend@example.net")["VerificationStatus"]
          == "SUCCESS", "the template's link verifies")
    ses.delete_custom_verification_email_template(TemplateName="smoke-own")
    ses.delete_email_identity(EmailIdentity="friend@example.net")
    ok("send_custom_verification_email: refusals, then the template's mail, link and redirect")
    ses.delete_custom_verification_email_template(TemplateName="smoke-welcome")
    expect_error(lambda: ses.get_custom_verification_email_template(TemplateName="smoke-welcome"),
                 "NotFoundException", 404, "a deleted template")

    # --- recommendations: the verifier's first look at the domain (its DNS answers NXDOMAIN) ---
    deadline = time.monotonic() + 20
    while True:
        recs = ses.list_recommendations()["Recommendations"]
        mine = [r for r in recs if r["ResourceArn"].endswith(f":identity/{domain}")]
        if any(r["Type"] == "DMARC" for r in mine) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    check(mine, f"no recommendations for {domain}: {recs}")
    for r in mine:
        check(r["Type"] in ("DKIM", "SPF", "DMARC") and r["Impact"] in ("LOW", "HIGH")
              and r["Status"] == "OPEN" and isinstance(r["Description"], str) and r["Description"]
              and r["CreatedTimestamp"] <= r["LastUpdatedTimestamp"], r)
    dmarc = [r for r in mine if r["Type"] == "DMARC"]
    check(len(dmarc) == 1 and dmarc[0]["Impact"] == "HIGH"
          and f"_dmarc.{domain}" in dmarc[0]["Description"], dmarc)
    only = ses.list_recommendations(Filter={"TYPE": "DMARC", "STATUS": "OPEN"})["Recommendations"]
    check(only and all(r["Type"] == "DMARC" for r in only), only)
    first = ses.list_recommendations(PageSize=1)
    check(len(first["Recommendations"]) == 1 and "NextToken" in first, first)
    second = ses.list_recommendations(PageSize=1, NextToken=first["NextToken"])
    check(second["Recommendations"] != first["Recommendations"], second)
    ok(f"list_recommendations: {len(mine)} open for {domain}, DMARC HIGH, filtered, paged")
    expect_error(lambda: ses.list_recommendations(Filter={"TYPE": "DKIM", "IMPACT": "HIGH"}),
                 "BadRequestException", 400, "a filter combining TYPE and IMPACT")
    expect_error(lambda: ses.list_recommendations(PageSize=101),
                 "BadRequestException", 400, "a recommendations page of 101")
    ses.put_email_identity_dkim_attributes(EmailIdentity=domain, SigningEnabled=False)
    got = ses.get_email_identity(EmailIdentity=domain)
    check(got["DkimAttributes"]["SigningEnabled"] is False, got)
    ok("DKIM signing off")

    # --- an operation Sesame does not implement ---
    # Lenient on the code: what matters is that boto3 parses the answer as an AWS error (a
    # ClientError, not a parse failure), that it names the operation, and that it is a 501,
    # which SDKs do not retry.
    try:
        ses.get_account()
        raise CheckFailed("get_account succeeded; expected an unsupported-operation error")
    except botocore.exceptions.ClientError as e:
        status = e.response["ResponseMetadata"]["HTTPStatusCode"]
        message = e.response["Error"].get("Message", "")
        check(status == 501, f"get_account: expected HTTP 501, got {status}: {e.response}")
        check("GetAccount" in message, f"get_account: message does not name it: {e.response}")
        ok(f"unsupported GetAccount -> {e.response['Error']['Code']} 501")

    # --- sending: an unverified sender is MessageRejected and nothing reaches the outbox ---
    outbox = os.path.join(data_dir, "outbox")
    before = sorted(os.listdir(outbox))
    content = {"Simple": {"Subject": {"Data": "hi"}, "Body": {"Text": {"Data": "body"}}}}
    expect_error(lambda: ses.send_email(FromEmailAddress=f"news@{domain}",
                                        Destination={"ToAddresses": ["rcpt@example.net"]},
                                        Content=content),
                 "MessageRejected", 400, "send_email from a domain not yet verified")
    check(sorted(os.listdir(outbox)) == before, f"the outbox changed: {os.listdir(outbox)}")
    ok("nothing reached the outbox")

    # --- authentication: each failure is the AWS 403 code, and none creates anything ---
    def client(**kwargs):
        return boto3.client("sesv2", endpoint_url=endpoint, region_name="us-east-1",
                            config=botocore.config.Config(retries={"max_attempts": 1}, **kwargs.pop("cfg", {})),
                            **kwargs)
    ses_once = client(aws_access_key_id=KEY_ID, aws_secret_access_key=SECRET)
    bad = [
        ("wrong secret", client(aws_access_key_id=KEY_ID, aws_secret_access_key="wrong"),
         "InvalidSignatureException"),
        ("unknown key", client(aws_access_key_id="AKIANOSUCHKEY0000000", aws_secret_access_key=SECRET),
         "UnrecognizedClientException"),
        ("unsigned", client(cfg={"signature_version": botocore.UNSIGNED}),
         "MissingAuthenticationTokenException"),
    ]
    # A key made and then disabled with the CLI while the server runs.
    made = subprocess.run([binary, "key", "create", "default", "--data-dir", data_dir],
                          check=True, capture_output=True, text=True).stdout
    made = json.loads(made)
    fresh = client(aws_access_key_id=made["AccessKeyId"], aws_secret_access_key=made["SecretAccessKey"])
    fresh.list_email_identities()
    ok("a key made with `sesame key create` works at once")
    subprocess.run([binary, "key", "disable", made["AccessKeyId"], "--data-dir", data_dir],
                   check=True, capture_output=True)
    bad.append(("disabled key", fresh, "UnrecognizedClientException"))
    for what, c, code in bad:
        expect_error(lambda: c.create_email_identity(EmailIdentity="denied.example.com"), code, 403, what)
    # Requests signed 20 minutes in the past and in the future: botocore reads the time
    # through botocore.auth.get_current_datetime, so shifting that shifts the signature.
    real_now = botocore.auth.get_current_datetime
    for shift, what in [(-20, "20 minutes old"), (20, "20 minutes ahead")]:
        botocore.auth.get_current_datetime = (
            lambda remove_tzinfo=True, s=shift: real_now(remove_tzinfo) + datetime.timedelta(minutes=s))
        try:
            e = expect_error(lambda: ses_once.create_email_identity(EmailIdentity="denied.example.com"),
                             "InvalidSignatureException", 403, what)
            check("Signature" in e.response["Error"]["Message"], e.response)
        finally:
            botocore.auth.get_current_datetime = real_now
    expect_error(lambda: ses.get_email_identity(EmailIdentity="denied.example.com"),
                 "NotFoundException", 404, "refused requests created nothing")

    # --- clean up ---
    for name in (domain, address):
        ses.delete_email_identity(EmailIdentity=name)
        expect_error(lambda: ses.get_email_identity(EmailIdentity=name),
                     "NotFoundException", 404, f"get {name} after delete")
    check(ses.list_email_identities()["EmailIdentities"] == [], "identities left after delete")
    ok("nothing listed after deleting both")


def main():
    binary = sys.argv[1] if len(sys.argv) > 1 else str(REPO / "target" / "debug" / "sesame")
    if not os.access(binary, os.X_OK):
        raise SystemExit(f"FAIL no executable sesame at {binary} (build it, or pass its path)")
    print(f"boto3 {boto3.__version__}, botocore {botocore.__version__}, binary {binary}")
    with tempfile.TemporaryDirectory(prefix="sesame-smoke-") as data_dir:
        server = Server(binary, data_dir)
        ok(f"server listening on {server.api}, account {server.account}")
        started = time.monotonic()
        try:
            ses = boto3.client(
                "sesv2", endpoint_url=f"http://{server.api}", region_name=REGION,
                aws_access_key_id=KEY_ID, aws_secret_access_key=SECRET,
                config=botocore.config.Config(retries={"max_attempts": 2, "mode": "standard"}),
            )
            run(ses, server.account, binary, data_dir)
            # SIGTERM is documented as a graceful shutdown, so it should end with status 0.
            status = server.stop()
            check(status == 0, f"sesame exited with status {status} after SIGTERM")
            ok("server shut down cleanly on SIGTERM")
        except Exception as e:  # noqa: BLE001 - any failure ends the run the same way
            server.stop()
            traceback.print_exc()
            print(f"---- sesame output ----\n{server.output()}---- end of sesame output ----",
                  file=sys.stderr)
            reason = str(e) if isinstance(e, CheckFailed) else f"{type(e).__name__}: {e}"
            print(f"FAIL {reason}  (after {CHECKS} passing checks)", file=sys.stderr)
            sys.exit(1)
        finally:
            # Also on Ctrl-C: never leave a server behind. A no-op if it already exited.
            server.stop()
    print(f"boto3 smoke test passed: {CHECKS} checks in {time.monotonic() - started:.1f} s")


if __name__ == "__main__":
    main()
