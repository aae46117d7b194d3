// Pipeline templates are DAGs of named steps. A template with a cycle, an unknown or duplicate step name is
// refused when it is written; a valid one is ordered so each step comes after the steps it depends on.
export interface StepDep {
  step: string;
  condition: "succeeded" | "finished";
}

export interface DagStep {
  name: string;
  dependsOn: StepDep[];
}

export type DagResult =
  | { ok: true; order: string[] }
  | { ok: false; errors: { path: string; message: string }[] };

export function orderSteps(steps: DagStep[]): DagResult {
  const errors: { path: string; message: string }[] = [];
  const names = new Map<string, number>();
  steps.forEach((s, i) => {
    if (names.has(s.name))
      errors.push({ path: `steps.${i}.name`, message: `duplicate step name "${s.name}"` });
    names.set(s.name, i);
  });
  steps.forEach((s, i) => {
    for (const d of s.dependsOn) {
      if (!names.has(d.step))
        errors.push({ path: `steps.${i}.dependsOn`, message: `unknown step "${d.step}"` });
      if (d.step === s.name)
        errors.push({ path: `steps.${i}.dependsOn`, message: `step "${s.name}" depends on itself` });
    }
  });
  if (errors.length) return { ok: false, errors };
  // Kahn's algorithm; whatever is left over sits on a cycle.
  const indeg = new Map(steps.map((s) => [s.name, new Set(s.dependsOn.map((d) => d.step)).size]));
  const dependents = new Map<string, string[]>();
  for (const s of steps)
    for (const d of new Set(s.dependsOn.map((x) => x.step)))
      dependents.set(d, [...(dependents.get(d) ?? []), s.name]);
  const ready = steps.filter((s) => indeg.get(s.name) === 0).map((s) => s.name);
  const order: string[] = [];
  while (ready.length) {
    const n = ready.shift()!;
    order.push(n);
    for (const m of dependents.get(n) ?? []) {
      indeg.set(m, indeg.get(m)! - 1);
      if (indeg.get(m) === 0) ready.push(m);
    }
  }
  if (order.length < steps.length) {
    const cyc = steps.filter((s) => !order.includes(s.name)).map((s) => s.name);
    return {
      ok: false,
      errors: [{ path: "steps", message: `dependency cycle among steps: ${cyc.join(", ")}` }],
    };
  }
  return { ok: true, order };
}
