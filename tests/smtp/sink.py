"""An aiosmtpd handler that keeps every message byte for byte (DKIM must still verify).

Run: PYTHONPATH=tests/smtp python -m aiosmtpd -n -l 127.0.0.1:PORT -c sink.RawSink DIR
Each message becomes DIR/NNNN.eml, with its envelope in DIR/NNNN.envelope (sender, then one
recipient per line); the .eml appears only once complete.
"""
import os


class RawSink:
    def __init__(self, directory):
        self.directory = directory
        self.count = 0

    @classmethod
    def from_cli(cls, parser, *args):
        return cls(args[0])

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        base = os.path.join(self.directory, f"{self.count:04d}")
        with open(base + ".envelope", "w") as f:
            f.write("\n".join([envelope.mail_from, *envelope.rcpt_tos]) + "\n")
        with open(base + ".tmp", "wb") as f:
            f.write(envelope.original_content)
        os.rename(base + ".tmp", base + ".eml")
        return "250 Message accepted"
