"""dkimpy's signing rate on one core: `dkimpy_sign.py KEY.pem MESSAGE SECONDS` prints msg/s.

The peer for the DKIM signing scenario: the same message, key, canonicalisation
(relaxed/relaxed) and signed headers as Sesame's signer.
"""
import sys
import time

import dkim

key = open(sys.argv[1], "rb").read()
message = open(sys.argv[2], "rb").read()
seconds = float(sys.argv[3])
headers = [b"from", b"to", b"subject", b"date", b"message-id", b"mime-version", b"content-type"]
n = 0
start = time.perf_counter()
while time.perf_counter() - start < seconds:
    sig = dkim.sign(message, b"bench", b"example.com", key,
                    canonicalize=(b"relaxed", b"relaxed"), include_headers=headers)
    n += 1
elapsed = time.perf_counter() - start
assert sig.startswith(b"DKIM-Signature:"), sig
print(f"{n / elapsed:.1f}")
