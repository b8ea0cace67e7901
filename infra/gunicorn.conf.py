"""gunicorn settings for the referral server: ``gunicorn -c infra/gunicorn.conf.py wsgi:app``."""

import glob
import multiprocessing
import os

bind = os.environ.get("BIND", f"0.0.0.0:{os.environ.get('PORT', '8000')}")
# Uploads spend most of their time waiting on the network and the disk, so threads per worker serve
# them well; processes scale with the cores. Each worker keeps its own database pool, so the default is
# capped: a container sees the host's cores, not its share of them.
workers = int(os.environ.get("WEB_CONCURRENCY")
              or min(multiprocessing.cpu_count() * 2 + 1, int(os.environ.get("GUNICORN_MAX_WORKERS", "12"))))
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
worker_class = "gthread"
# A 64 MiB image over a slow clinic uplink can take minutes.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "300"))
graceful_timeout = 30
keepalive = 5
limit_request_line = 8190
# Workers are replaced now and then, and as soon as one has grown past WORKER_MAX_RSS_MB (checked after each
# request; it finishes what it is doing first), so that memory a burst of large images took comes back.
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "2000"))
max_requests_jitter = max_requests // 10
_MAX_RSS_BYTES = int(os.environ.get("WORKER_MAX_RSS_MB", "1024")) * 1024 * 1024
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")

# Logs: one JSON object per line on stderr, like the app's own (LOG_FORMAT=text for plain lines).
# There is no gunicorn access log. The app writes one access line per request itself, with what
# gunicorn cannot know: the route template instead of the concrete path, the request id and the user
# id. gunicorn's line would repeat it with the raw URL, and its atoms could not be escaped into JSON.
accesslog = None
errorlog = "-"
_FORMATTER = ("referral.observability.logs.TextFormatter" if os.environ.get("LOG_FORMAT", "").lower() == "text"
              else "referral.observability.logs.JsonFormatter")
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    # The app puts its own handler on the root logger when it starts; one here would double every line.
    "root": {"level": "WARNING", "handlers": []},
    "loggers": {
        "gunicorn.error": {"level": "INFO", "handlers": ["error_console"], "propagate": False},
        # Access logging is on whenever logconfig_dict is set; this logger writes nowhere.
        "gunicorn.access": {"level": "WARNING", "handlers": [], "propagate": False},
    },
    "handlers": {
        "error_console": {"class": "logging.StreamHandler", "formatter": "structured", "stream": "ext://sys.stderr"},
    },
    "formatters": {"structured": {"()": _FORMATTER}},
}

# Metrics from several workers: with PROMETHEUS_MULTIPROC_DIR set, each worker writes its counters to
# files there and any worker's /metrics sums them (see referral/observability/metrics.py). The files of
# an earlier run would be counted again, so they are removed at start; a dead worker's live gauges go
# with it. The directory must be private to this server and writable (a tmpfs suits it).
_METRICS_DIR = os.environ.get("PROMETHEUS_MULTIPROC_DIR")


def _resident_bytes():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def post_request(worker, req, environ, resp):
    try:
        resident = _resident_bytes()
    except OSError:
        return
    if resident > _MAX_RSS_BYTES and worker.alive:
        worker.log.warning("worker %s uses %d MiB, past WORKER_MAX_RSS_MB: replacing it", worker.pid,
                           resident // (1024 * 1024))
        worker.alive = False


def on_starting(server):
    if _METRICS_DIR:
        os.makedirs(_METRICS_DIR, exist_ok=True)
        for stale in glob.glob(os.path.join(_METRICS_DIR, "*.db")):
            os.remove(stale)


def child_exit(server, worker):
    if _METRICS_DIR:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid, _METRICS_DIR)
