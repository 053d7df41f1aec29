"""A scriptable SMTP server (aiosmtpd) for the mail-path tests: it plays the relay Sesame sends to.

Run: python relay_server.py DIR [--starttls CERT KEY] [--smtps CERT KEY] [--auth USER PASS]

It listens on 127.0.0.1 port 0 and writes the port to DIR/port once it accepts connections.
Each accepted message becomes DIR/NNNN.eml (bytes as received) with DIR/NNNN.envelope (sender,
then one recipient per line). DIR/events gets one line per SMTP event, flushed at once:
  connect
  starttls
  auth user=<login> ok=<0|1> tls=<0|1>
  mail tls=<0|1>
  data tls=<0|1> reply=<code>
The test steers it with files it may write at any time:
  DIR/plan         reply codes for the next DATA commands, one per line, each consumed once
                   (e.g. "451" twice); when the plan is empty, messages are accepted (250).
  DIR/no-starttls  while it exists, STARTTLS is not offered on new connections.
--auth requires AUTH before MAIL and accepts exactly USER/PASS; AUTH is accepted without TLS
too, so a client that sends credentials in clear is seen doing so (tls=0), not refused first.
"""
import argparse
import asyncio
import os
import ssl
import warnings

from aiosmtpd.smtp import SMTP, AuthResult

REPLIES = {
    "250": "250 OK: message accepted",
    "451": "451 4.3.0 Try again later",
    "554": "554 5.7.1 Message refused",
}


class Recorder:
    def __init__(self, directory):
        self.directory = directory
        self.count = 0
        self.events = open(os.path.join(directory, "events"), "a", buffering=1)

    def event(self, line):
        self.events.write(line + "\n")
        self.events.flush()

    def next_reply(self):
        path = os.path.join(self.directory, "plan")
        try:
            with open(path) as f:
                plan = [l.strip() for l in f if l.strip()]
        except FileNotFoundError:
            plan = []
        if not plan:
            return "250"
        with open(path + ".tmp", "w") as f:
            f.write("".join(p + "\n" for p in plan[1:]))
        os.replace(path + ".tmp", path)
        return plan[0]


def tls(server, session):
    """1 once the session runs over TLS: after STARTTLS, or from the first byte (SMTPS)."""
    wrapped = server.transport is not None and server.transport.get_extra_info("sslcontext")
    return int(session.ssl is not None or bool(wrapped))


class Handler:
    def __init__(self, recorder):
        self.recorder = recorder

    def handle_STARTTLS(self, server, session, envelope):
        self.recorder.event("starttls")
        return True

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        self.recorder.event(f"mail tls={tls(server, session)}")
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        code = self.recorder.next_reply()
        self.recorder.event(f"data tls={tls(server, session)} reply={code}")
        if code != "250":
            return REPLIES[code]
        r = self.recorder
        r.count += 1
        base = os.path.join(r.directory, f"{r.count:04d}")
        with open(base + ".envelope", "w") as f:
            f.write("\n".join([envelope.mail_from, *envelope.rcpt_tos]) + "\n")
        with open(base + ".tmp", "wb") as f:
            f.write(envelope.original_content)
        os.rename(base + ".tmp", base + ".eml")
        return REPLIES["250"]


class Recording(SMTP):
    """Logs each new connection (not the second `connection_made` a STARTTLS causes)."""

    def __init__(self, recorder, *args, **kwargs):
        self.recorder = recorder
        super().__init__(*args, **kwargs)

    def connection_made(self, transport):
        first = self._original_transport is None
        super().connection_made(transport)
        if first:
            self.recorder.event("connect")


def context(cert, key):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    return ctx


def main():
    p = argparse.ArgumentParser()
    p.add_argument("dir")
    p.add_argument("--starttls", nargs=2, metavar=("CERT", "KEY"))
    p.add_argument("--smtps", nargs=2, metavar=("CERT", "KEY"))
    p.add_argument("--auth", nargs=2, metavar=("USER", "PASS"))
    a = p.parse_args()
    # aiosmtpd warns that AUTH without TLS is unsafe: here that is the point.
    warnings.simplefilter("ignore")
    recorder = Recorder(a.dir)
    handler = Handler(recorder)
    starttls = context(*a.starttls) if a.starttls else None
    smtps = context(*a.smtps) if a.smtps else None

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = (auth_data.login, auth_data.password) == (
            a.auth[0].encode(),
            a.auth[1].encode(),
        )
        login = auth_data.login.decode(errors="replace")
        recorder.event(f"auth user={login} ok={int(ok)} tls={tls(server, session)}")
        return AuthResult(success=ok, handled=False)

    def factory():
        withheld = os.path.exists(os.path.join(a.dir, "no-starttls"))
        kwargs = dict(
            hostname="relay.test",
            tls_context=None if withheld else starttls,
        )
        if a.auth:
            kwargs.update(
                authenticator=authenticator,
                auth_required=True,
                auth_require_tls=False,
            )
        return Recording(recorder, handler, **kwargs)

    async def serve():
        loop = asyncio.get_running_loop()
        server = await loop.create_server(factory, host="127.0.0.1", port=0, ssl=smtps)
        port = server.sockets[0].getsockname()[1]
        with open(os.path.join(a.dir, "port.tmp"), "w") as f:
            f.write(f"{port}\n")
        os.replace(os.path.join(a.dir, "port.tmp"), os.path.join(a.dir, "port"))
        async with server:
            await server.serve_forever()

    asyncio.run(serve())


if __name__ == "__main__":
    main()
