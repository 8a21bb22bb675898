"""A small client of Bosun's public API (httpx). No Django here: it runs on any host with Python."""

import threading

import httpx

# The states in which a sequence execution has ended (Bosun's API, as Keptn names them).
TERMINAL = ("finished", "aborted", "timedOut", "superseded")


class BosunError(Exception):
    """An answer Bosun gave with a 4xx/5xx status; `message` is Bosun's own words."""

    def __init__(self, code: int, message: str, body: dict | None = None):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.body = body or {}


class Unreachable(Exception):
    """Bosun could not be reached (connection refused, DNS, timeout)."""


class BadAnswer(BosunError):
    """Bosun (or something in front of it) answered with a success status but a body that is not JSON."""


def answer(response: httpx.Response):
    """The JSON of a successful answer; BadAnswer when it is not JSON (a proxy's page, a truncated body)."""
    try:
        return response.json()
    except ValueError:
        kind = response.headers.get("content-type", "no content type").split(";")[0]
        raise BadAnswer(response.status_code, f"{response.request.method} {response.request.url.path} answered "
                                              f"{response.status_code} with a body that is not JSON ({kind}, "
                                              f"{len(response.content)} bytes); is the URL Bosun's?") from None


class Client:
    """Bosun's API with a token. Thread-safe: each thread gets its own connection pool."""

    def __init__(self, url: str, token: str, timeout: float = 15.0):
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self._local = threading.local()

    @property
    def http(self) -> httpx.Client:
        client = getattr(self._local, "client", None)
        if client is None:
            client = httpx.Client(base_url=self.url, timeout=self.timeout,
                                  headers={"x-token": self.token, "user-agent": "bosun-client"})
            self._local.client = client
        return client

    def request(self, method: str, path: str, *, ok=(200,), **kwargs) -> httpx.Response:
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise Unreachable(f"Bosun at {self.url} cannot be reached: {exc}") from exc
        if response.status_code not in ok:
            try:
                body = response.json()
                message = body.get("message") if isinstance(body, dict) else None
            except ValueError:
                body, message = None, None
            raise BosunError(response.status_code, message or response.text[:300] or response.reason_phrase,
                             body if isinstance(body, dict) else None)
        return response

    def get(self, path: str, **params) -> dict:
        return answer(self.request("GET", path, params={k: v for k, v in params.items() if v is not None}))

    def post(self, path: str, body=None, *, ok=(200,), **kwargs) -> httpx.Response:
        return self.request("POST", path, json=body if body is not None else {}, ok=ok, **kwargs)

    # --- what an executor needs ---

    def project_names(self) -> list[str]:
        return [p["projectName"] for p in self.get("/api/controlPlane/v1/project")["projects"]]

    def jobs(self, project: str) -> list[dict]:
        return self.get(f"/api/controlPlane/v1/project/{project}/jobs")["jobs"]

    def open_tasks(self, task: str, project: str | None = None) -> list[dict]:
        """The `.triggered` events of tasks named `task` that no executor has finished yet."""
        path = f"/api/controlPlane/v1/event/triggered/sh.keptn.event.{task}.triggered"
        return self.get(path, project=project, pageSize=100)["events"]

    def task(self, triggered_id: str) -> dict:
        return self.get(f"/api/controlPlane/v1/task/{triggered_id}")

    def send_event(self, event: dict) -> httpx.Response:
        return self.post("/api/v1/event", event, ok=(200, 202))

    def task_post(self, triggered_id: str, what: str, body=None, ok=(200,), **kwargs) -> httpx.Response:
        return self.post(f"/api/controlPlane/v1/task/{triggered_id}/{what}", body, ok=ok, **kwargs)

    def close(self):
        client = getattr(self._local, "client", None)
        if client is not None:
            client.close()
            self._local.client = None
