// The admin token the placement benchmark's Worker is configured with (shared by config and test).
export const BENCH_ADMIN_TOKEN = "bench-admin-token-0123456789";
