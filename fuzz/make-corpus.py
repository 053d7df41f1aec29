#!/usr/bin/env python3
"""Writes the committed seed corpus, fuzz/corpus/<target>/, from real artefacts: SES requests
(some signed by botocore, as the AWS CLI and boto3 sign them), DNS queries built to RFC 1035,
DER keys from the openssl command line, and MIME messages. Seeds are meant to be small and to
reach distinct code; the fuzzers grow their own corpus from them at run time.

Run from anywhere: python3 fuzz/make-corpus.py  (needs python3, botocore and openssl).
It replaces the seed directories it writes; keys are random, so a rerun changes the DER seeds.
"""

import base64
import datetime
import hashlib
import os
import shutil
import struct
import subprocess
import tempfile

import botocore.auth
import botocore.awsrequest
import botocore.credentials

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus")

# Must match fuzz/src/edge.rs.
KEY_ID = "AKIDFUZZEXAMPLE"
SECRET = "fuzzSecretKey/EXAMPLE+wJalrXUtnFEMI/K7MDENG"
ACCOUNT = "123456789012"
HOST = "email.us-east-1.amazonaws.com"
NOW = datetime.datetime(2026, 12, 1, 12, 0, 0, tzinfo=datetime.timezone.utc)

# The first byte of an http_edge input: how the harness sends the rest.
AS_IS, SIGN_HEADER, PRESIGN, DISABLED = 0, 2, 3, 6


def write(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def fresh(target):
    shutil.rmtree(os.path.join(CORPUS, target), ignore_errors=True)


def http(method, target, body=b"", headers=()):
    if isinstance(body, str):
        body = body.encode()
    head = f"{method} {target} HTTP/1.1\r\nhost: {HOST}\r\n"
    if body:
        head += "content-type: application/json\r\n"
        head += f"content-length: {len(body)}\r\n"
    for k, v in headers:
        head += f"{k}: {v}\r\n"
    return head.encode() + b"\r\n" + body


def botocore_signed(method, path, query="", body=b""):
    """A request as botocore signs it for SESv2 (path encoded twice in the signature)."""
    if isinstance(body, str):
        body = body.encode()
    url = f"https://{HOST}{path}" + (f"?{query}" if query else "")
    headers = {"Content-Type": "application/json"} if body else {}
    req = botocore.awsrequest.AWSRequest(method=method, url=url, data=body, headers=headers)
    creds = botocore.credentials.Credentials(KEY_ID, SECRET)
    auth = botocore.auth.SigV4Auth(creds, "ses", "us-east-1")
    original = botocore.auth.get_current_datetime
    botocore.auth.get_current_datetime = lambda: NOW.replace(tzinfo=None)
    try:
        auth.add_auth(req)
    finally:
        botocore.auth.get_current_datetime = original
    target = path + (f"?{query}" if query else "")
    head = f"{method} {target} HTTP/1.1\r\nhost: {HOST}\r\n"
    for k, v in req.headers.items():
        head += f"{k}: {v}\r\n"
    if body:
        head += f"content-length: {len(body)}\r\n"
    return head.encode() + b"\r\n" + body


def openssl(*args, data=None):
    return subprocess.run(["openssl", *args], input=data, check=True, capture_output=True).stdout


def keys(tmp):
    """name -> DER bytes."""
    out = {}
    for bits in (1024, 2048):
        pem = os.path.join(tmp, f"rsa{bits}.pem")
        openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", f"rsa_keygen_bits:{bits}", "-out", pem)
        out[f"rsa{bits}-pkcs8.der"] = openssl("pkcs8", "-topk8", "-nocrypt", "-in", pem, "-outform", "DER")
        out[f"rsa{bits}-pkcs1.der"] = openssl("rsa", "-in", pem, "-outform", "DER", "-traditional")
        if bits == 1024:
            out["rsa1024-spki-public.der"] = openssl("pkey", "-in", pem, "-pubout", "-outform", "DER")
    pem = os.path.join(tmp, "rsa1024-e3.pem")
    openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:1024",
            "-pkeyopt", "rsa_keygen_pubexp:3", "-out", pem)
    out["rsa1024-e3-pkcs1.der"] = openssl("rsa", "-in", pem, "-outform", "DER", "-traditional")
    pem = os.path.join(tmp, "rsa512.pem")
    openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:512", "-out", pem)
    out["rsa512-too-small-pkcs1.der"] = openssl("rsa", "-in", pem, "-outform", "DER", "-traditional")
    pem = os.path.join(tmp, "rsa3p.pem")
    openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:1024",
            "-pkeyopt", "rsa_keygen_primes:3", "-out", pem)
    out["rsa1024-three-primes-pkcs1.der"] = openssl("rsa", "-in", pem, "-outform", "DER", "-traditional")
    pem = os.path.join(tmp, "ec.pem")
    openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", pem)
    out["ec-p256-pkcs8.der"] = openssl("pkcs8", "-topk8", "-nocrypt", "-in", pem, "-outform", "DER")
    pem = os.path.join(tmp, "ed.pem")
    openssl("genpkey", "-algorithm", "ED25519", "-out", pem)
    out["ed25519-pkcs8.der"] = openssl("pkcs8", "-topk8", "-nocrypt", "-in", pem, "-outform", "DER")
    # PKCS#8 with an attribute set after the key: the fast path must leave it to OpenSSL.
    p8 = out["rsa1024-pkcs8.der"]
    out["rsa1024-pkcs8-trailing-byte.der"] = p8 + b"\x00"
    return out


def http_corpus(byodkim_b64):
    t = "http_edge"
    fresh(t)
    arn = f"arn:aws:ses:us-east-1:{ACCOUNT}:identity/example.com"
    arn_q = arn.replace(":", "%3A").replace("/", "%2F")
    token = base64.urlsafe_b64encode(
        b"page:sesame-page-v1\n" + ACCOUNT.encode() + b"\n\nexample.com"
    ).rstrip(b"=").decode()
    raw_mime = (
        "From: Sender <sender@example.org>\r\nFrom: evil@attacker.test\r\nTo: a@example.net\r\n"
        "Subject: two authors\r\n\r\nbody\r\n"
    )
    good_mime = (
        "From: \"Doe, Jane\" <sender@example.org>\r\nTo: a@example.net\r\nCc: b@example.net\r\n"
        "Subject: hi\r\nMIME-Version: 1.0\r\n\r\nhello\r\n"
    )
    signed = {
        "create-domain": http("POST", "/v2/email/identities",
                              '{"EmailIdentity":"new.example.net","Tags":[{"Key":"team","Value":"mail"}]}'),
        "create-address": http("POST", "/v2/email/identities", '{"EmailIdentity":"a+b@example.net"}'),
        "create-1024": http("POST", "/v2/email/identities",
                            '{"EmailIdentity":"small.example.net","DkimSigningAttributes":{"NextSigningKeyLength":"RSA_1024_BIT"}}'),
        "create-byodkim": http("POST", "/v2/email/identities",
                               '{"EmailIdentity":"byo.example.net","DkimSigningAttributes":'
                               '{"DomainSigningSelector":"sel1","DomainSigningPrivateKey":"' + byodkim_b64 + '"}}'),
        "get-domain": http("GET", "/v2/email/identities/example.com"),
        "get-address": http("GET", "/v2/email/identities/sender%40example.org"),
        "list": http("GET", "/v2/email/identities?PageSize=1"),
        "list-token": http("GET", f"/v2/email/identities?PageSize=1&NextToken={token}"),
        "list-post-filter": http("POST", "/v2/email/list-identities",
                                 '{"PageSize":10,"Filter":{"IDENTITY_TYPE":"DOMAIN","IDENTITY_NAME_CONTAINS":"ex"}}'),
        "delete": http("DELETE", "/v2/email/identities/example.com"),
        "put-dkim": http("PUT", "/v2/email/identities/example.com/dkim", '{"SigningEnabled":false}'),
        "put-dkim-signing-easy": http("PUT", "/v2/email/identities/example.com/dkim/signing",
                                      '{"SigningAttributesOrigin":"AWS_SES","SigningAttributes":{"NextSigningKeyLength":"RSA_1024_BIT"}}'),
        "put-dkim-signing-external": http("PUT", "/v2/email/identities/example.com/dkim/signing",
                                          '{"SigningAttributesOrigin":"EXTERNAL","SigningAttributes":'
                                          '{"DomainSigningSelector":"s2","DomainSigningPrivateKey":"' + byodkim_b64 + '"}}'),
        "put-feedback": http("PUT", "/v2/email/identities/example.com/feedback", '{"EmailForwardingEnabled":false}'),
        "tag": http("POST", "/v2/email/tags", '{"ResourceArn":"' + arn + '","Tags":[{"Key":"k","Value":"v"}]}'),
        "untag": http("DELETE", f"/v2/email/tags?ResourceArn={arn_q}&TagKeys=k&TagKeys=team"),
        "list-tags": http("GET", f"/v2/email/tags?ResourceArn={arn_q}"),
        "send-simple": http("POST", "/v2/email/outbound-emails",
                            '{"FromEmailAddress":"sender@example.org","Destination":{"ToAddresses":["a@example.net"],'
                            '"CcAddresses":["b@example.net"]},"Content":{"Simple":{"Subject":{"Data":"hi"},'
                            '"Body":{"Text":{"Data":"hello"},"Html":{"Data":"<p>hello</p>"}}}}}'),
        "send-simple-verified": http("POST", "/v2/email/outbound-emails",
                                     '{"FromEmailAddress":"News <news@example.com>","Destination":{"ToAddresses":["a@example.net"],'
                                     '"BccAddresses":["c@example.net"]},"ReplyToAddresses":["r@example.com"],"Content":{"Simple":'
                                     '{"Subject":{"Data":"hi","Charset":"UTF-8"},"Body":{"Text":{"Data":"hello"}}}},'
                                     '"EmailTags":[{"Name":"n","Value":"v"}]}'),
        "send-raw-verified": http("POST", "/v2/email/outbound-emails",
                                  '{"Content":{"Raw":{"Data":"' + base64.b64encode(good_mime.replace(
                                      "sender@example.org", "sender@example.com").encode()).decode() + '"}}}'),
        "send-raw": http("POST", "/v2/email/outbound-emails",
                         '{"Content":{"Raw":{"Data":"' + base64.b64encode(good_mime.encode()).decode() + '"}}}'),
        "send-raw-two-from": http("POST", "/v2/email/outbound-emails",
                                  '{"Destination":{"ToAddresses":["a@example.net"]},"Content":{"Raw":{"Data":"'
                                  + base64.b64encode(raw_mime.encode()).decode() + '"}}}'),
        "unsupported-get-account": http("GET", "/v2/email/account"),
        "unknown-path": http("GET", "/v2/email/nowhere/at/all"),
        "wrong-method": http("PATCH", "/v2/email/identities"),
        "dot-segments": http("GET", "/v2/email/./identities/../identities/example.com"),
        "bad-json": http("POST", "/v2/email/identities", '{"EmailIdentity":'),
        "bad-label": http("GET", "/v2/email/identities/%ff%fe"),
    }
    for name, raw in signed.items():
        write(t, f"signed-{name}", bytes([SIGN_HEADER]) + raw)
    write(t, "presigned-get", bytes([PRESIGN]) + http("GET", "/v2/email/identities/sender%40example.org"))
    write(t, "presigned-list", bytes([PRESIGN]) + http("GET", "/v2/email/identities?PageSize=2"))
    write(t, "disabled-key-get", bytes([DISABLED]) + http("GET", "/v2/email/identities/example.com"))
    # Signed by botocore and sent as they are: a real client's signature, which mutations break.
    write(t, "botocore-create", bytes([AS_IS]) + botocore_signed(
        "POST", "/v2/email/identities", body='{"EmailIdentity":"boto.example.net"}'))
    write(t, "botocore-get-address", bytes([AS_IS]) + botocore_signed(
        "GET", "/v2/email/identities/sender%40example.org"))
    write(t, "botocore-list", bytes([AS_IS]) + botocore_signed(
        "GET", "/v2/email/identities", query="PageSize=5"))
    # Unsigned or badly signed, as is.
    write(t, "unsigned-get", bytes([AS_IS]) + http("GET", "/v2/email/identities/example.com"))
    write(t, "auth-incomplete", bytes([AS_IS]) + http("GET", "/v2/email/identities", headers=[
        ("authorization", f"AWS4-HMAC-SHA256 Credential={KEY_ID}/20261201/us-east-1/ses/aws4_request"),
        ("x-amz-date", "20261201T120000Z")]))
    write(t, "auth-wrong-region", bytes([AS_IS]) + http("GET", "/v2/email/identities", headers=[
        ("authorization", f"AWS4-HMAC-SHA256 Credential={KEY_ID}/20261201/eu-west-1/ses/aws4_request, "
                          "SignedHeaders=host;x-amz-date, Signature=" + "0" * 64),
        ("x-amz-date", "20261201T120000Z")]))
    write(t, "auth-bad-signature", bytes([AS_IS]) + http("GET", "/v2/email/identities", headers=[
        ("authorization", f"AWS4-HMAC-SHA256 Credential={KEY_ID}/20261201/us-east-1/ses/aws4_request, "
                          "SignedHeaders=host;x-amz-date, Signature=" + "ab" * 32),
        ("x-amz-date", "20261201T120000Z")]))
    write(t, "presign-stale", bytes([AS_IS]) + http(
        "GET", f"/v2/email/identities?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential={KEY_ID}%2F20261130%2F"
               "us-east-1%2Fses%2Faws4_request&X-Amz-Date=20261130T120000Z&X-Amz-Expires=300"
               "&X-Amz-SignedHeaders=host&X-Amz-Signature=" + "cd" * 32))
    write(t, "too-large-declared", bytes([SIGN_HEADER]) + (
        f"POST /v2/email/identities HTTP/1.1\r\nhost: {HOST}\r\ncontent-length: 999999999\r\n\r\n{{}}").encode())


def sigv4_corpus():
    t = "sigv4_parse"
    fresh(t)
    date = "20261201T120000Z"
    cred = f"{KEY_ID}/20261201/us-east-1/ses/aws4_request"
    sig = "ab" * 32
    body_hash = hashlib.sha256(b'{"EmailIdentity":"example.com"}').hexdigest()
    write(t, "header-form",
          f"POST\n/v2/email/identities\n\nhost:{HOST}\nx-amz-date:{date}\ncontent-type:application/json\n"
          f"authorization:AWS4-HMAC-SHA256 Credential={cred}, SignedHeaders=content-type;host;x-amz-date, "
          f"Signature={sig}\n\n" + '{"EmailIdentity":"example.com"}')
    write(t, "header-content-sha",
          f"POST\n/v2/email/identities\n\nhost:{HOST}\nx-amz-date:{date}\nx-amz-content-sha256:{body_hash}\n"
          f"authorization:AWS4-HMAC-SHA256 Credential={cred},SignedHeaders=host;x-amz-content-sha256;x-amz-date,"
          f"Signature={sig}\n\n" + '{"EmailIdentity":"example.com"}')
    write(t, "presigned",
          "GET\n/v2/email/identities/user%2Btag%40example.com\n"
          f"?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential={cred.replace('/', '%2F')}&X-Amz-Date={date}"
          f"&X-Amz-Expires=300&X-Amz-SignedHeaders=host&X-Amz-Signature={sig}\nhost:{HOST}\n\n")
    write(t, "session-token",
          f"GET\n/v2/email/identities\n?PageSize=3&NextToken=a%2Bb\nhost:{HOST}\nx-amz-date:{date}\n"
          f"x-amz-security-token:tok\nauthorization:AWS4-HMAC-SHA256 Credential={cred}, SignedHeaders=host;"
          f"x-amz-date;x-amz-security-token, Signature={sig}\n\n")
    write(t, "dots-and-spaces",
          f"GET\n/a/./b/../c//d/%2E%2E/e%20f/\n?b=2&a=1&a=0&c&=x&d=%ZZ+y\nhost:  {HOST}  \nx-amz-date:{date}\n"
          f"my-header:  a   b\tc \nmy-header:second\nauthorization:AWS4-HMAC-SHA256 Credential={cred}, "
          f"SignedHeaders=host;my-header;x-amz-date, Signature={sig}\n\n")
    write(t, "aws-suite-get-vanilla",
          "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n"
          "authorization:AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
          "SignedHeaders=host;x-amz-date, "
          "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31\n\n")
    write(t, "feb-30", f"GET\n/\n\nhost:h\nx-amz-date:20260230T250000Z\nauthorization:AWS4-HMAC-SHA256 "
                       f"Credential={cred}, SignedHeaders=host, Signature={sig}\n\n")


def dns_name(name):
    out = b""
    for label in name.rstrip(".").split("."):
        out += bytes([len(label)]) + label.encode()
    return out + b"\x00"


def dns_query(qid, name, qtype, edns=None, opcode=0, flags_rd=True, extra_question=None):
    flags = (opcode << 11) | (0x0100 if flags_rd else 0)
    questions = [(name, qtype)] + ([extra_question] if extra_question else [])
    ar = 1 if edns is not None else 0
    msg = struct.pack(">HHHHHH", qid, flags, len(questions), 0, 0, ar)
    for n, t in questions:
        msg += dns_name(n) + struct.pack(">HH", t, 1)
    if edns is not None:
        # OPT RR (RFC 6891): root name, type 41, class = payload size, TTL = ext-rcode/version/DO.
        msg += b"\x00" + struct.pack(">HHIH", 41, edns, 0x00008000, 0)
    return msg


def dns_corpus():
    t = "dns_respond"
    fresh(t)

    def put(name, query):
        # The first byte picks the transport: 0 UDP, 1 TCP.
        write(t, f"udp-{name}", b"\x00" + query)
        if name.startswith("txt-2048") or name in ("any", "two-questions"):
            write(t, f"tcp-{name}", b"\x01" + query)

    zone = "dkim.sesame.test"
    token = "abcdefghijabcdefghijabcdefghijab"
    TXT, SOA, NS, A, ANY = 16, 6, 2, 1, 255
    put("txt-1024", dns_query(0x1234, f"{token}.{zone}", TXT))
    put("txt-2048-udp-512", dns_query(0x2222, f"ffffffffffffffffffffffffffffffff.{zone}", TXT))
    put("txt-2048-edns-1232", dns_query(0x2223, f"ffffffffffffffffffffffffffffffff.{zone}", TXT, edns=1232))
    put("txt-mixed-case-edns-4096", dns_query(0x3333, f"ABCDEFGHIJabcdefghijABCDEFGHIJab.DKIM.sesame.TEST", TXT, edns=4096))
    put("soa", dns_query(1, zone, SOA))
    put("ns", dns_query(2, zone, NS, edns=512))
    put("apex-a", dns_query(3, zone, A))
    put("token-a-nodata", dns_query(4, f"{token}.{zone}", A))
    put("any", dns_query(5, f"{token}.{zone}", ANY))
    put("nxdomain", dns_query(6, f"nope.{zone}", TXT))
    put("refused-other-zone", dns_query(7, "example.com", TXT))
    put("notify-opcode", dns_query(8, zone, SOA, opcode=4))
    put("two-questions", dns_query(9, f"{token}.{zone}", TXT, extra_question=(zone, SOA)))
    put("no-question", struct.pack(">HHHHHH", 10, 0x0100, 0, 0, 0, 0))
    # A compression pointer in the question (points back at the header: a loop-ish name).
    put("pointer-name", struct.pack(">HHHHHH", 11, 0x0100, 1, 0, 0, 0) + b"\x03abc\xc0\x0c" + struct.pack(">HH", 16, 1))
    put("truncated", dns_query(12, f"{token}.{zone}", TXT)[:20])
    put("edns-version-1", dns_query(13, f"{token}.{zone}", TXT, edns=1232)[:-7] + b"\x01\x00\x00\x00\x00")
    put("response-bit", b"\x00\x0e\x80" + dns_query(14, zone, SOA)[3:])


def mime_corpus():
    t = "mime_envelope"
    fresh(t)
    msgs = {
        "simple": "From: a@example.com\r\nTo: b@example.net\r\nSubject: x\r\n\r\nbody\r\n",
        "display-names": "From: \"Doe, Jane\" <jane@example.com>\r\nTo: \"A, B\" <a@example.net>, c@example.net\r\n"
                         "Cc: d@example.net\r\nBcc: e@example.net\r\n\r\nbody\r\n",
        "two-from": "From: a@example.com\r\nFrom: evil@attacker.test\r\nTo: b@example.net\r\n\r\nx\r\n",
        "from-two-mailboxes": "From: a@example.com, b@example.com\r\nSender: a@example.com\r\n\r\nx\r\n",
        "two-sender": "From: a@example.com\r\nSender: a@example.com\r\nSender: z@example.com\r\n\r\nx\r\n",
        "folded-from": "From: Jane\r\n Doe <jane@example.com>\r\nTo: b@example.net\r\n\r\nx\r\n",
        "encoded-word": "From: =?utf-8?B?SsO2cmc=?= <j@example.com>\r\nTo: =?iso-8859-1?Q?B=F6b?= <b@example.net>\r\n\r\nx\r\n",
        "group": "From: a@example.com\r\nTo: Team: x@example.net, y@example.net;\r\n\r\nx\r\n",
        "comments": "From: (comment) a(inner)@example.com (Jane)\r\n\r\nx\r\n",
        "bare-lf": "From: a@example.com\nTo: b@example.net\n\nbody\n",
        "mixed-line-ends": "From: a@example.com\r\nFrom: evil@attacker.test\nTo: b@example.net\r\n\r\nx\r\n",
        "bare-cr": "From: a@example.com\rFrom: evil@attacker.test\r\n\r\nx\r\n",
        "no-from": "To: b@example.net\r\nSubject: none\r\n\r\nx\r\n",
        "space-before-colon": "From : a@example.com\r\nFROM: evil@attacker.test\r\n\r\nx\r\n",
        "multipart": "From: a@example.com\r\nTo: b@example.net\r\nMIME-Version: 1.0\r\n"
                     "Content-Type: multipart/alternative; boundary=\"b1\"\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\n"
                     "hi\r\n--b1\r\nContent-Type: text/html\r\n\r\n<p>hi</p>\r\n--b1--\r\n",
        "no-body": "From: a@example.com",
        "idn": "From: j\u00f6rg@b\u00fccher.example\r\nTo: b@example.net\r\n\r\nx\r\n",
    }
    for name, m in msgs.items():
        write(t, name, m)


def dkim_corpus(spki):
    t = "dkim_txt"
    fresh(t)
    p = base64.b64encode(spki).decode()
    write(t, "value", f"v=DKIM1; k=rsa; p={p}")
    value = f"v=DKIM1; k=rsa; p={p}"
    write(t, "split-255", "\0".join(value[i:i + 255] for i in range(0, len(value), 255)))
    write(t, "whitespace", f"v = DKIM1 ;\tk=rsa ; p = {p[:40]} \r\n {p[40:]} ;")
    write(t, "empty-p-revoked", "v=DKIM1; p=")
    write(t, "no-p", "v=DKIM1; k=rsa; t=y; h=sha256")
    write(t, "bad-base64", "v=DKIM1; p=AAA*==")
    write(t, "two-p", f"p={p[:20]}; p={p}")
    write(t, "der-bytes", spki)


def main():
    with tempfile.TemporaryDirectory() as tmp:
        ks = keys(tmp)
    fresh("key_import")
    for name, der in ks.items():
        write("key_import", name, der)
    http_corpus(base64.b64encode(ks["rsa1024-pkcs1.der"]).decode())
    sigv4_corpus()
    dns_corpus()
    mime_corpus()
    dkim_corpus(ks["rsa1024-spki-public.der"])


if __name__ == "__main__":
    main()
