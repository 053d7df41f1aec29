#!/usr/bin/env python3
"""Judge a received message the way a receiver does: SPF with pyspf, DKIM with dkimpy, and
DMARC alignment of each, all through one DNS server (the tests' forwarder over NSD and
Sesame's key zone).

Usage: check.py MESSAGE.eml ENVELOPE_SENDER CLIENT_IP DNS_IP:PORT
Prints one JSON object: spf (pyspf's result), spf_domain, dkim (dkimpy verified), dkim_domain
(the signature's d=), from_domain, spf_aligned and dkim_aligned (relaxed alignment, RFC 7489
section 3.1, with the organisational domain taken as the last two labels, which holds for the
tests' names).
"""
import json
import sys

import dkim
import dns.message
import dns.query
import dns.rdatatype
import dns.resolver
import email
import email.utils
import spf


def org(domain):
    return ".".join(domain.lower().rstrip(".").split(".")[-2:])


def main():
    path, sender, ip, server = sys.argv[1:5]
    host, port = server.rsplit(":", 1)
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = [host]
    resolver.port = int(port)
    resolver.lifetime = 5
    # pyspf looks up through dnspython's default resolver.
    dns.resolver.default_resolver = resolver
    spf_result, explanation = spf.check2(i=ip, s=sender, h="relay.sesame.test")

    def dnsfunc(name, timeout=5):
        name = name.decode() if isinstance(name, bytes) else name
        q = dns.message.make_query(name, "TXT")
        # TCP: a 2048-bit key with its CNAME does not fit a 512-byte UDP answer.
        r = dns.query.tcp(q, host, port=int(port), timeout=timeout)
        for rrset in r.answer:
            if rrset.rdtype == dns.rdatatype.TXT:
                for rd in rrset:
                    return b"".join(rd.strings)
        return None

    data = open(path, "rb").read()
    message = email.message_from_bytes(data)
    from_domain = email.utils.parseaddr(message["From"])[1].rsplit("@", 1)[1]
    try:
        verified = dkim.verify(data, dnsfunc=dnsfunc)
    except Exception as e:  # dkimpy raises on malformed signatures
        print(f"dkimpy: {e}", file=sys.stderr)
        verified = False
    sig = message.get("DKIM-Signature", "")
    tags = dict(
        t.strip().split("=", 1) for t in sig.replace("\r\n", "").split(";") if "=" in t
    )
    dkim_domain = tags.get("d", "").strip()
    spf_domain = sender.rsplit("@", 1)[1]
    print(
        json.dumps(
            {
                "spf": spf_result,
                "spf_explanation": explanation,
                "spf_domain": spf_domain,
                "dkim": bool(verified),
                "dkim_domain": dkim_domain,
                "from_domain": from_domain,
                "spf_aligned": spf_result == "pass" and org(spf_domain) == org(from_domain),
                "dkim_aligned": bool(verified) and org(dkim_domain) == org(from_domain),
            }
        )
    )


if __name__ == "__main__":
    main()
