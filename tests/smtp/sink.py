"""A real SMTP server for Parley's tests (aiosmtpd): each accepted mail becomes one JSON
file in OUTDIR with its envelope, headers and decoded text and HTML parts.

Usage: /usr/bin/python3 tests/smtp/sink.py HOST PORT OUTDIR
"""

import asyncio
import email
import email.policy
import json
import os
import sys
import uuid

from aiosmtpd.controller import Controller


class JsonSink:
    def __init__(self, outdir):
        self.outdir = outdir

    async def handle_DATA(self, server, session, envelope):
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        text = msg.get_body(preferencelist=("plain",))
        html = msg.get_body(preferencelist=("html",))
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "headers": [[k, str(v)] for k, v in msg.items()],
            "subject": str(msg["subject"]),
            "to": str(msg["to"]),
            "text": text.get_content() if text is not None else None,
            "html": html.get_content() if html is not None else None,
        }
        name = uuid.uuid4().hex
        tmp = os.path.join(self.outdir, "." + name)
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(record, f)
        # Renamed whole: a reader never sees half a file.
        os.rename(tmp, os.path.join(self.outdir, name + ".json"))
        return "250 Message accepted for delivery"


async def main(host, port, outdir):
    controller = Controller(JsonSink(outdir), hostname=host, port=port)
    controller.start()
    print("ready", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        controller.stop()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), sys.argv[3]))
