#!/usr/bin/env python3
"""Verify a DKIM-signed message with dkimpy, resolving keys the way a receiver would.

Usage: verify.py MESSAGE.eml CUSTOMER_DNS KEYZONE_DNS KEYZONE
       verify.py MESSAGE.eml --txt NAME TXT [--txt NAME TXT ...]
  CUSTOMER_DNS  IP:PORT of the customer's authoritative server (e.g. NSD in the tests)
  KEYZONE_DNS   IP:PORT of Sesame's key-zone responder
  KEYZONE       the zone Sesame publishes Easy DKIM keys under
  --txt         no DNS at all: dkimpy's lookup of NAME (`selector._domainkey.domain`) answers
                TXT (`v=DKIM1; k=rsa; p=...`); any other name has no record

MESSAGE may be a directory: every *.eml in it is verified, and the exit status is 0 only if
each one verifies (one line per failure and a count are printed).

In the first form the selector's TXT is looked up at the customer's server; a CNAME there is
followed, to Sesame's responder for names in the key zone. The second gives dkimpy the key
directly, so a signature is checked by an independent verifier wherever Python runs. Exits 0
if dkimpy verifies the signature, 1 if it does not.
"""
import sys

import dkim
import dns.message
import dns.query
import dns.rdatatype


def stub_dnsfunc(pairs):
    table = {name.rstrip(".").lower(): txt.encode() for name, txt in pairs}

    def dnsfunc(name, timeout=5):
        target = name.decode() if isinstance(name, bytes) else name
        return table.get(target.rstrip(".").lower())

    return dnsfunc


def main():
    if len(sys.argv) > 2 and sys.argv[2] == "--txt":
        path, rest = sys.argv[1], sys.argv[2:]
        if len(rest) % 3 or any(flag != "--txt" for flag in rest[::3]):
            sys.exit(__doc__)
        pairs = list(zip(rest[1::3], rest[2::3]))
        verify(path, stub_dnsfunc(pairs))
        return
    path, customer, keyzone_server, zone = sys.argv[1:5]
    zone = zone.rstrip(".").lower()

    def ask(server, name):
        ip, port = server.rsplit(":", 1)
        return dns.query.tcp(dns.message.make_query(name, "TXT"), ip, port=int(port), timeout=5)

    def dnsfunc(name, timeout=5):
        target = name.decode() if isinstance(name, bytes) else name
        for _ in range(8):
            in_zone = target.rstrip(".").lower().endswith(zone)
            answer = ask(keyzone_server if in_zone else customer, target).answer
            for rrset in answer:
                for rr in rrset:
                    if rr.rdtype == dns.rdatatype.TXT:
                        return b"".join(rr.strings)
            cnames = [rr for rrset in answer for rr in rrset if rr.rdtype == dns.rdatatype.CNAME]
            if not cnames:
                return None
            target = cnames[0].target.to_text()
        return None

    verify(path, dnsfunc)


def verify(path, dnsfunc):
    import os

    version = getattr(dkim, "__version__", "?")
    if os.path.isdir(path):
        names = sorted(n for n in os.listdir(path) if n.endswith(".eml"))
        failed = [n for n in names if not dkim.verify(open(os.path.join(path, n), "rb").read(), dnsfunc=dnsfunc)]
        for n in failed:
            print(f"dkimpy {version}: FAIL {os.path.join(path, n)}")
        print(f"dkimpy {version}: {len(names) - len(failed)} of {len(names)} messages pass in {path}")
        sys.exit(0 if names and not failed else 1)
    message = open(path, "rb").read()
    ok = dkim.verify(message, dnsfunc=dnsfunc)
    print(f"dkimpy {version}: {'pass' if ok else 'FAIL'} {path}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
