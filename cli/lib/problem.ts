// RFC 9457 problem details: the control plane answers every error as application/problem+json with at
// least {type, title, status, detail, code}. Commands show `detail` to users and branch on `code`.

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail?: string;
  code?: string;
  [extra: string]: unknown;
}

/**
 * Builds a Problem from whatever an error response carried. Proxies and load balancers answer with HTML or
 * plain text, so anything that is not a problem object still yields a usable title and status.
 */
export function toProblem(status: number, statusText: string, body: unknown): Problem {
  if (body !== null && typeof body === "object" && !Array.isArray(body)) {
    const b = body as Record<string, unknown>;
    return {
      ...b,
      type: typeof b.type === "string" ? b.type : "about:blank",
      title: typeof b.title === "string" ? b.title : statusText || `HTTP ${status}`,
      status: typeof b.status === "number" ? b.status : status,
      ...(typeof b.detail === "string" ? { detail: b.detail } : {}),
      ...(typeof b.code === "string" ? { code: b.code } : {}),
    };
  }
  const text = typeof body === "string" ? body.trim().slice(0, 200) : "";
  return {
    type: "about:blank",
    title: statusText || `HTTP ${status}`,
    status,
    ...(text ? { detail: text } : {}),
  };
}

/** One line for humans: "Conflict (StaleLease): lease 3 is older than 4". */
export function formatProblem(p: Problem): string {
  const head = p.code ? `${p.title} (${p.code})` : p.title;
  return p.detail && p.detail !== p.title ? `${head}: ${p.detail}` : head;
}
