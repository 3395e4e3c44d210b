// Resource kind names and their aliases, apart from the schemas so the CLI can resolve
// `get svc` without loading and compiling every validator.
export const RESOURCE_KINDS = ['Mesh', 'Service', 'Route', 'TrafficPolicy', 'AccessPolicy'] as const;
export type ResourceKind = (typeof RESOURCE_KINDS)[number];

const KIND_ALIASES: Record<string, ResourceKind> = {};
for (const k of RESOURCE_KINDS) {
  const lower = k.toLowerCase();
  KIND_ALIASES[lower] = k;
  KIND_ALIASES[`${lower}s`] = k;
  KIND_ALIASES[lower.endsWith('y') ? `${lower.slice(0, -1)}ies` : `${lower}es`] = k;
}
Object.assign(KIND_ALIASES, { svc: 'Service', tp: 'TrafficPolicy', ap: 'AccessPolicy', meshes: 'Mesh' });

/** `services`, `Service`, `svc` → `Service`; null when unknown. */
export function normalizeKind(text: string): ResourceKind | null {
  return KIND_ALIASES[text.toLowerCase()] ?? null;
}
