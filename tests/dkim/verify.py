#!/usr/bin/env python3
"""Verify a DKIM-signed message with dkimpy, resolving keys the way a receiver would.

Usage: verify.py MESSAGE.eml CUSTOMER_DNS KEYZONE_DNS KEYZONE
  CUSTOMER_DNS  IP:PORT of the customer's authoritative server (e.g. NSD in the tests)
  KEYZONE_DNS   IP:PORT of Sesame's key-zone responder
  KEYZONE       the zone Sesame publishes Easy DKIM keys under

The selector's TXT is looked up at the customer's server; a CNAME there is followed, to
Sesame's responder for names in the key zone. Exits 0 if dkimpy verifies the signature.
"""
import sys

import dkim
import dns.message
import dns.query
import dns.rdatatype


def main():
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

    message = open(path, "rb").read()
    ok = dkim.verify(message, dnsfunc=dnsfunc)
    print(f"dkimpy {getattr(dkim, '__version__', '?')}: {'pass' if ok else 'FAIL'} {path}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
