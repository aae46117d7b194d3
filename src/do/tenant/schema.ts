// SQLite schema of a tenant's Durable Object, as ordered migrations (applied once per object).
export const TENANT_SCHEMA: readonly string[] = [
  `CREATE TABLE jobs (
    id TEXT PRIMARY KEY,
    seq INTEGER NOT NULL UNIQUE,
    state TEXT NOT NULL,
    priority INTEGER NOT NULL,
    user TEXT NOT NULL,
    gpus INTEGER NOT NULL,
    type_key TEXT NOT NULL,
    shape TEXT NOT NULL,
    ready INTEGER NOT NULL DEFAULT 0,
    not_before INTEGER,
    deps_pending INTEGER NOT NULL DEFAULT 0,
    attempt INTEGER NOT NULL DEFAULT 1,
    failures INTEGER NOT NULL DEFAULT 0,
    lost_requeues INTEGER NOT NULL DEFAULT 0,
    lease INTEGER,
    worker_id TEXT,
    shard TEXT,
    gpu_indices TEXT,
    assigned_type TEXT,
    exit_code INTEGER,
    reason TEXT,
    message TEXT,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    spec TEXT NOT NULL,
    array_id TEXT,
    array_index INTEGER,
    idempotency_key TEXT,
    submitted_at INTEGER NOT NULL,
    scheduled_at INTEGER,
    started_at INTEGER,
    finished_at INTEGER,
    updated_at INTEGER NOT NULL,
    check_at INTEGER,
    version INTEGER NOT NULL
  )`,
  // The ready queue: placement picks by (shape, priority, user, seq) and never scans the backlog.
  "CREATE INDEX jobs_ready ON jobs (shape, priority, user, seq) WHERE ready = 1",
  "CREATE INDEX jobs_ready_age ON jobs (shape, priority, seq) WHERE ready = 1",
  "CREATE INDEX jobs_ready_prio ON jobs (priority, seq) WHERE ready = 1",
  "CREATE INDEX jobs_state ON jobs (state, seq)",
  "CREATE INDEX jobs_not_before ON jobs (not_before) WHERE not_before IS NOT NULL",
  "CREATE INDEX jobs_check ON jobs (check_at) WHERE check_at IS NOT NULL",
  "CREATE INDEX jobs_finished ON jobs (finished_at) WHERE finished_at IS NOT NULL",
  "CREATE INDEX jobs_array ON jobs (array_id, array_index) WHERE array_id IS NOT NULL",
  // Ready-job counts per (shape, priority, user): the per-user fairness pick and the demand summary.
  `CREATE TABLE ready_users (
    shape TEXT NOT NULL, priority INTEGER NOT NULL, user TEXT NOT NULL, n INTEGER NOT NULL,
    PRIMARY KEY (shape, priority, user)
  )`,
  // GPUs and jobs held by scheduled + running jobs, per concrete GPU type: the live quota ledger.
  "CREATE TABLE holdings (type_key TEXT PRIMARY KEY, type_name TEXT NOT NULL, gpus INTEGER NOT NULL, jobs INTEGER NOT NULL)",
  `CREATE TABLE allocations (
    id TEXT PRIMARY KEY, gpus INTEGER NOT NULL, type_key TEXT NOT NULL, gpu_type TEXT, note TEXT,
    created_at INTEGER NOT NULL
  )`,
  "CREATE TABLE user_usage (user TEXT PRIMARY KEY, value REAL NOT NULL, rate REAL NOT NULL, at INTEGER NOT NULL)",
  `CREATE TABLE events (
    seq INTEGER PRIMARY KEY, job_id TEXT NOT NULL, at INTEGER NOT NULL, from_state TEXT, to_state TEXT NOT NULL,
    reason TEXT, message TEXT, attempt INTEGER NOT NULL, lease INTEGER, worker_id TEXT, exit_code INTEGER
  )`,
  "CREATE INDEX events_job ON events (job_id, seq)",
  "CREATE TABLE idempotency (key TEXT PRIMARY KEY, job_id TEXT NOT NULL, fingerprint TEXT NOT NULL, at INTEGER NOT NULL)",
  "CREATE INDEX idempotency_at ON idempotency (at)",
  "CREATE TABLE logs (job_id TEXT PRIMARY KEY, attempt INTEGER NOT NULL, tail TEXT NOT NULL, updated_at INTEGER NOT NULL)",
  "CREATE TABLE keys (hash TEXT PRIMARY KEY, id TEXT NOT NULL, name TEXT NOT NULL, role TEXT NOT NULL)",
  `CREATE TABLE deps (
    job_id TEXT NOT NULL, dep_id TEXT NOT NULL, condition TEXT NOT NULL, PRIMARY KEY (job_id, dep_id)
  )`,
  "CREATE INDEX deps_dep ON deps (dep_id)",
  `CREATE TABLE pipeline_runs (
    id TEXT PRIMARY KEY, pipeline_id TEXT NOT NULL, name TEXT NOT NULL, version INTEGER NOT NULL,
    created_at INTEGER NOT NULL, steps TEXT NOT NULL
  )`,
  "CREATE INDEX pipeline_runs_pipeline ON pipeline_runs (pipeline_id, created_at)",
  // Jobs by state and priority, kept by every transition, so metrics never count rows.
  "CREATE TABLE state_counts (state TEXT NOT NULL, priority INTEGER NOT NULL, n INTEGER NOT NULL, PRIMARY KEY (state, priority))",
  "INSERT INTO state_counts (state, priority, n) SELECT state, priority, count(*) FROM jobs GROUP BY state, priority",
  // Every index costs on every insert and transition: drop the unused one, and let the state index also
  // answer "oldest queued job per priority" without a scan.
  "DROP INDEX IF EXISTS jobs_ready_prio",
  "DROP INDEX IF EXISTS jobs_state",
  "CREATE INDEX jobs_state ON jobs (state, priority, seq)",
];
