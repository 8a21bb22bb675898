"""An HTTP proxy in front of a real Bosun that answers chosen requests with faults (an overloaded proxy's 503,
a throttle's 429, a 200 page that is not JSON) and passes everything else through."""

import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx


class FaultProxy:
    def __init__(self, upstream: str):
        self.upstream = upstream
        self.faults: list[tuple[re.Pattern, list[tuple[int, str, bytes]]]] = []
        self.served: list[tuple[str, int]] = []  # (path, status) of every fault served
        self.lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _any(self):
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                fault = proxy.take(self.path)
                if fault is not None:
                    status, content_type, payload = fault
                    self.send_response(status)
                    self.send_header("content-type", content_type)
                    self.send_header("content-length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
                answer = httpx.request(self.command, proxy.upstream + self.path, headers=headers, content=body,
                                       timeout=30)
                self.send_response(answer.status_code)
                for name, value in answer.headers.items():
                    if name.lower() not in ("content-length", "transfer-encoding", "connection", "content-encoding"):
                        self.send_header(name, value)
                self.send_header("content-length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            do_GET = do_POST = do_PUT = do_DELETE = _any

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def pending(self, path_pattern: str) -> int:
        with self.lock:
            return sum(len(answers) for pattern, answers in self.faults if pattern.pattern == path_pattern)

    def fail(self, path_pattern: str, *answers: tuple[int, str, bytes]):
        """Answer the next requests whose path matches with these answers, one each, in order (None: pass it)."""
        with self.lock:
            self.faults.append((re.compile(path_pattern), list(answers)))

    def take(self, path: str):
        with self.lock:
            for pattern, answers in self.faults:
                if answers and pattern.search(path):
                    answer = answers.pop(0)
                    self.served.append((path, answer[0] if answer else 200))
                    return answer
        return None

    def close(self):
        self.server.shutdown()
        self.server.server_close()


UNAVAILABLE = (503, "text/html", b"<html><body>503 Service Unavailable</body></html>")
THROTTLED = (429, "application/json", b'{"code": 429, "message": "Too many requests"}')
UNAUTHORIZED = (401, "application/json", b'{"code": 401, "message": "Missing or invalid API token"}')
NOT_JSON = (200, "text/html", b"<html><body>Welcome to the proxy</body></html>")
