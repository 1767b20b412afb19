#!/usr/bin/env python3
"""A stand-in for a pager: an Alertmanager webhook receiver that prints each notification.

    python3 config/alertmanager/webhook-log.py [PORT]   (default 5001, on 127.0.0.1)

Prints one line per alert of each notification: the receiver path (/security-pager, /ops, ...
as in alertmanager.yml), the status, the alert name and its labels, then the summary. Python's
standard library only; loopback only.
"""
import http.server
import json
import sys


class Receiver(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
        except ValueError:
            self.send_response(400)
            self.end_headers()
            return
        for alert in body.get("alerts", []):
            labels = alert.get("labels", {})
            others = " ".join(f"{k}={v}" for k, v in sorted(labels.items()) if k != "alertname")
            summary = alert.get("annotations", {}).get("summary", "")
            print(f"{self.path} {alert.get('status', '?')} {labels.get('alertname', '?')} {others}: {summary}",
                  flush=True)
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 5001
    http.server.HTTPServer(("127.0.0.1", port), Receiver).serve_forever()


if __name__ == "__main__":
    main()
