// `npm run db:migrate`: apply the drizzle migrations to DATABASE_URL (Neon in production).
import { applyMigrations } from "./local/postgres.ts";

const url = process.env.DATABASE_URL;
if (!url) {
  process.stderr.write(
    "DATABASE_URL is not set (the Neon connection string, e.g. postgres://…?sslmode=require)\n",
  );
  process.exit(2);
}
await applyMigrations(url);
process.stdout.write("migrations applied\n");
