// The slice of "cloudflare:test" the placement benchmark uses. bench/** is type-checked by
// tsconfig.node.json (Node types), where the pool's own declarations are not loaded.
declare module "cloudflare:test" {
  export const env: { TENANT_QUEUE: { getByName(name: string): unknown } };
  export const SELF: { fetch(input: string, init?: RequestInit): Promise<Response> };
}
