// `gantry admin key create|list|revoke`: tenant API keys. The platform admin manages any tenant's keys; a
// tenant admin key may manage its own tenant's (the command falls back to the profile's tenant key).
import { seg } from "../../lib/api.ts";
import { stringFlag } from "../../lib/args.ts";
import { formatAgo } from "../../lib/duration.ts";
import { UsageError } from "../../lib/errors.ts";
import { EXIT } from "../../lib/exit-codes.ts";
import { renderTable } from "../../lib/table.ts";
import { dispatch, runCommand } from "../context.ts";
import { adminSpec } from "./common.ts";

interface ApiKey {
  id: string;
  tenantId: string;
  name: string;
  role: "admin" | "member";
  prefix: string;
  createdAt: string;
  revokedAt: string | null;
  key?: string;
}

const NOT_FOUND =
  "check the tenant id ('gantry admin tenant list') and the key id ('gantry admin key list TENANT')";

export async function run(argv: string[]): Promise<number> {
  return dispatch(
    "admin key",
    "Tenant API keys: random, shown once at creation, stored as SHA-256 hashes.",
    {
      create: { summary: "create a key (printed once)", run: create },
      list: { summary: "list a tenant's keys", run: list },
      revoke: { summary: "revoke a key", run: revoke },
    },
    argv,
  );
}

function create(argv: string[]): Promise<number> {
  const spec = adminSpec(
    "key create",
    "TENANT --name NAME [--role member|admin] [options]",
    "Creates an API key for TENANT and prints it once: store it now ('gantry login --key KEY').\nThe key's name is the default job user.",
    {
      flags: { name: { type: "string" }, role: { type: "string" } },
      options:
        "  --name NAME           who the key is for (letters, digits, . _ @ -)\n  --role ROLE           member (default: submit and read jobs) or admin (also policies, keys)",
      args: { min: 1, max: 1, names: "the TENANT" },
      notFound: NOT_FOUND,
    },
  );
  return runCommand(spec, argv, async (ctx) => {
    const name = stringFlag(ctx.flags, "name");
    if (!name) throw new UsageError("missing --name");
    const role = stringFlag(ctx.flags, "role") ?? "member";
    if (role !== "member" && role !== "admin")
      throw new UsageError(`--role must be member or admin, got "${role}"`);
    const k = await ctx.api().post<ApiKey>(`/v1/tenants/${seg(ctx.args[0]!)}/keys`, { name, role });
    if (ctx.json) ctx.out.doc(k);
    else {
      ctx.out.info(
        `Created ${k.role} key ${k.id} "${k.name}" for tenant ${k.tenantId}. It is shown once; store it now:`,
      );
      ctx.out.line(k.key ?? "");
    }
    return EXIT.ok;
  });
}

function list(argv: string[]): Promise<number> {
  const spec = adminSpec(
    "key list",
    "TENANT [options]",
    "Lists a tenant's keys (never the keys themselves).",
    {
      args: { min: 1, max: 1, names: "the TENANT" },
      notFound: NOT_FOUND,
    },
  );
  return runCommand(spec, argv, async (ctx) => {
    const page = await ctx.api().get<{ items: ApiKey[] }>(`/v1/tenants/${seg(ctx.args[0]!)}/keys`);
    if (ctx.json) ctx.out.doc(page);
    else if (page.items.length === 0) ctx.out.line("No keys.");
    else {
      const now = Date.now();
      ctx.out.print(
        renderTable(
          [
            { header: "ID", value: (k: ApiKey) => k.id },
            { header: "NAME", value: (k) => k.name },
            { header: "ROLE", value: (k) => k.role },
            { header: "PREFIX", value: (k) => `${k.prefix}…` },
            { header: "CREATED", value: (k) => formatAgo(k.createdAt, now) },
            { header: "REVOKED", value: (k) => (k.revokedAt ? formatAgo(k.revokedAt, now) : "-") },
          ],
          page.items,
        ),
      );
    }
    return EXIT.ok;
  });
}

function revoke(argv: string[]): Promise<number> {
  const spec = adminSpec(
    "key revoke",
    "TENANT KEY_ID [options]",
    "Revokes a key; it stops working everywhere within seconds.",
    {
      args: { min: 2, max: 2, names: "the TENANT and the KEY_ID" },
      notFound: NOT_FOUND,
    },
  );
  return runCommand(spec, argv, async (ctx) => {
    const [tenant, keyId] = ctx.args as [string, string];
    await ctx.api().delete(`/v1/tenants/${seg(tenant)}/keys/${seg(keyId)}`);
    if (ctx.json) ctx.out.doc({ tenantId: tenant, id: keyId, revoked: true });
    else ctx.out.line(`Revoked key ${keyId} of tenant ${tenant}.`);
    return EXIT.ok;
  });
}
