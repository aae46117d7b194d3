// `gantry policies [list|create|show|delete|evaluate]`: admission policies (CEL over job, tenant, now).
// Tenant admin keys manage the tenant's policies; the platform admin token (--admin, or --global on create)
// manages global ones. `evaluate` dry-runs a submission described exactly like `gantry submit`.
import { seg } from "../lib/api.ts";
import { boolFlag, stringFlag } from "../lib/args.ts";
import { formatAgo } from "../lib/duration.ts";
import { UsageError } from "../lib/errors.ts";
import { EXIT, EXIT_CODES_HELP } from "../lib/exit-codes.ts";
import { renderKeyValues, renderTable } from "../lib/table.ts";
import { COMMON_HELP, type Ctx, dispatch, runCommand } from "./context.ts";
import { buildSubmission, JOB_FLAGS, JOB_FLAGS_HELP, splitCommand } from "./job-spec.ts";

export interface Policy {
  id: string;
  tenantId: string | null;
  scope: "tenant" | "global";
  name: string;
  version: number;
  expression: string;
  effect: "deny" | "warn";
  message: string | null;
  messageExpression: string | null;
  enabled: boolean;
  createdAt: string;
  updatedAt: string;
}

interface Decision {
  policyId: string;
  name: string;
  scope: string;
  effect: string;
  matched: boolean;
  message: string | null;
  error?: string;
}

const ADMIN_FLAG = { admin: { type: "boolean" } } as const;
const ADMIN_HELP = `  --admin               use the platform admin token (global policies) instead of the tenant key`;
const NOT_FOUND = "'gantry policies' lists the policies you can see";

const usage = (synopsis: string, text: string, options = "") =>
  `Usage: gantry policies ${synopsis}\n\n${text}\n${options ? `\nOptions:\n${options}\n` : ""}${ADMIN_HELP}\n${COMMON_HELP}\n\n${EXIT_CODES_HELP}`;

const roleOf = (ctx: Ctx) => (boolFlag(ctx.flags, "admin") ? "admin" : "tenant");

export async function run(argv: string[]): Promise<number> {
  return dispatch(
    "policies",
    "Admission policies: CEL expressions over job, tenant and now; a policy matches when true.\n" +
      "deny rejects the submission (403) with its message; warn admits it and records the warning.",
    {
      list: { summary: "the policies that apply to you (default)", run: list },
      create: { summary: "create a policy", run: create },
      show: { summary: "show one policy", run: show },
      delete: { summary: "delete a policy", run: remove },
      evaluate: { summary: "dry-run a submission against the policies", run: evaluate },
    },
    argv,
    "list",
  );
}

function list(argv: string[]): Promise<number> {
  const spec = {
    name: "policies list",
    usage: usage(
      "[list] [options]",
      "Lists the tenant's policies and the global ones (admin token: the global ones).",
    ),
    flags: ADMIN_FLAG,
  };
  return runCommand(spec, argv, async (ctx) => {
    const page = await ctx.api(roleOf(ctx)).get<{ items: Policy[] }>("/v1/policies");
    if (ctx.json) ctx.out.doc(page);
    else if (page.items.length === 0) ctx.out.line("No policies.");
    else ctx.out.print(renderPolicies(page.items));
    return EXIT.ok;
  });
}

export function renderPolicies(items: Policy[]): string {
  return renderTable(
    [
      { header: "ID", value: (p: Policy) => p.id },
      { header: "NAME", value: (p) => p.name, max: 32 },
      { header: "SCOPE", value: (p) => p.scope },
      { header: "EFFECT", value: (p) => p.effect },
      { header: "ENABLED", value: (p) => (p.enabled ? "yes" : "no") },
      { header: "VERSION", value: (p) => p.version, right: true },
      { header: "EXPRESSION", value: (p) => p.expression, max: 60 },
    ],
    items,
  );
}

function create(argv: string[]): Promise<number> {
  const spec = {
    name: "policies create",
    usage: usage(
      "create --name NAME --expression CEL --effect deny|warn [options]",
      "Creates a policy: tenant-scoped with a tenant admin key, global with --global (admin token).",
      `  --name NAME           policy name
  --expression CEL      matches when true, e.g. 'job.gpus > 8' or 'job.gpuType == "H100" && job.priority == "high"'
  --effect deny|warn    deny rejects the submission, warn admits it with a warning
  --message TEXT        what the submitter sees when it matches
  --message-expression CEL  a CEL string expression for the message instead
  --disabled            create it switched off
  --global              a global policy (uses the platform admin token)`,
    ),
    flags: {
      ...ADMIN_FLAG,
      name: { type: "string" },
      expression: { type: "string" },
      effect: { type: "string" },
      message: { type: "string" },
      "message-expression": { type: "string" },
      disabled: { type: "boolean" },
      global: { type: "boolean" },
    },
  } as const;
  return runCommand(spec, argv, async (ctx) => {
    const name = stringFlag(ctx.flags, "name");
    const expression = stringFlag(ctx.flags, "expression");
    const effect = stringFlag(ctx.flags, "effect");
    if (!name) throw new UsageError("missing --name");
    if (!expression) throw new UsageError("missing --expression (CEL, e.g. 'job.gpus > 8')");
    if (effect !== "deny" && effect !== "warn") throw new UsageError('--effect must be "deny" or "warn"');
    const global = boolFlag(ctx.flags, "global");
    const body: Record<string, unknown> = { name, expression, effect };
    const message = stringFlag(ctx.flags, "message");
    if (message !== undefined) body.message = message;
    const messageExpression = stringFlag(ctx.flags, "message-expression");
    if (messageExpression !== undefined) body.messageExpression = messageExpression;
    if (boolFlag(ctx.flags, "disabled")) body.enabled = false;
    if (global) body.scope = "global";
    const p = await ctx.api(global ? "admin" : roleOf(ctx)).post<Policy>("/v1/policies", body);
    if (ctx.json) ctx.out.doc(p);
    else ctx.out.line(`Created ${p.scope} policy ${p.id} (${p.name}, ${p.effect}).`);
    return EXIT.ok;
  });
}

function show(argv: string[]): Promise<number> {
  const spec = {
    name: "policies show",
    usage: usage("show POLICY_ID [options]", "Shows one policy."),
    flags: ADMIN_FLAG,
    args: { min: 1, max: 1, names: "POLICY_ID" },
    notFound: NOT_FOUND,
  };
  return runCommand(spec, argv, async (ctx) => {
    const p = await ctx.api(roleOf(ctx)).get<Policy>(`/v1/policies/${seg(ctx.args[0]!)}`);
    if (ctx.json) ctx.out.doc(p);
    else {
      ctx.out.print(
        renderKeyValues([
          ["Policy", p.id],
          ["Name", p.name],
          ["Scope", p.tenantId ? `tenant ${p.tenantId}` : "global"],
          ["Effect", p.effect],
          ["Enabled", p.enabled ? "yes" : "no"],
          ["Version", p.version],
          ["Expression", p.expression],
          ["Message", p.messageExpression ? `(CEL) ${p.messageExpression}` : p.message],
          ["Created", `${p.createdAt} (${formatAgo(p.createdAt)})`],
          ["Updated", `${p.updatedAt} (${formatAgo(p.updatedAt)})`],
        ]),
      );
    }
    return EXIT.ok;
  });
}

function remove(argv: string[]): Promise<number> {
  const spec = {
    name: "policies delete",
    usage: usage("delete POLICY_ID [options]", "Deletes a policy (kept in its version history)."),
    flags: ADMIN_FLAG,
    args: { min: 1, max: 1, names: "POLICY_ID" },
    notFound: NOT_FOUND,
  };
  return runCommand(spec, argv, async (ctx) => {
    const id = ctx.args[0]!;
    await ctx.api(roleOf(ctx)).delete(`/v1/policies/${seg(id)}`);
    if (ctx.json) ctx.out.doc({ id, deleted: true });
    else ctx.out.line(`Deleted policy ${id}.`);
    return EXIT.ok;
  });
}

function evaluate(argv: string[]): Promise<number> {
  const { flags, command } = splitCommand(argv);
  const spec = {
    name: "policies evaluate",
    usage: usage(
      "evaluate [job options] -- CMD [ARGS...]",
      `Dry run: what every enabled policy decides for this submission (nothing is stored).
Exits 0 when it would be admitted, 5 when a policy would deny it.

${JOB_FLAGS_HELP}`,
    ),
    flags: { ...ADMIN_FLAG, ...JOB_FLAGS },
  };
  return runCommand(spec, flags, async (ctx) => {
    const job = buildSubmission(ctx.flags, command);
    const r = await ctx
      .api(roleOf(ctx))
      .post<{ allowed: boolean; decisions: Decision[] }>("/v1/policies/evaluate", { job });
    if (ctx.json) ctx.out.doc(r);
    else {
      ctx.out.line(r.allowed ? "Allowed." : "Denied.");
      if (r.decisions.length) {
        ctx.out.line();
        ctx.out.print(
          renderTable(
            [
              { header: "POLICY", value: (d: Decision) => d.policyId },
              { header: "NAME", value: (d) => d.name, max: 32 },
              { header: "SCOPE", value: (d) => d.scope },
              { header: "EFFECT", value: (d) => d.effect },
              { header: "MATCHED", value: (d) => (d.error ? "error" : d.matched ? "yes" : "no") },
              { header: "MESSAGE", value: (d) => d.error ?? (d.matched ? d.message : ""), max: 80 },
            ],
            r.decisions,
          ),
        );
      }
    }
    return r.allowed ? EXIT.ok : EXIT.conflict;
  });
}
