// Room lifetimes as people pick or write them; the engine's `ferry_core::parse_lifetime` reads
// the same forms on the command line. The server caps whatever is asked at its maximum.

/** The picker's presets, `[label, seconds]`; the first marked default is preselected. */
export const LIFETIME_PRESETS: readonly { label: string; secs: number; default?: boolean }[] = [
  { label: "10 minutes", secs: 10 * 60 },
  { label: "1 hour", secs: 3600, default: true },
  { label: "1 day", secs: 24 * 3600 },
  { label: "7 days", secs: 7 * 24 * 3600 },
];

export const DEFAULT_LIFETIME = LIFETIME_PRESETS.find((p) => p.default)?.secs ?? 3600;

const UNITS: Record<string, number> = { s: 1, sec: 1, secs: 1, m: 60, min: 60, mins: 60, h: 3600, hr: 3600, hour: 3600, hours: 3600, d: 86400, day: 86400, days: 86400 };

/** Seconds in `30s`, `10m`, `1h`, `1d`, `1h30m`, `2 hours` or a bare number of minutes; null if it does not read. */
export function parseLifetime(text: string): number | null {
  const t = text.trim().toLowerCase();
  if (!t) return null;
  // A bare number in a box labelled "minutes" means minutes.
  if (/^\d+$/.test(t)) return Number(t) > 0 ? Number(t) * 60 : null;
  let total = 0;
  const re = /(\d+)\s*([a-z]+)\s*/gy;
  let m: RegExpExecArray | null;
  let at = 0;
  while ((m = re.exec(t))) {
    const unit = UNITS[m[2]];
    if (!unit) return null;
    total += Number(m[1]) * unit;
    at = re.lastIndex;
  }
  return at === t.length && total > 0 && Number.isSafeInteger(total) ? total : null;
}

/** `secs` as people say it: "10 minutes", "1 hour", "1 day 3 hours" (two units at most). */
export function lifetimeLabel(secs: number): string {
  const parts: string[] = [];
  let left = Math.max(0, Math.floor(secs));
  for (const [size, name] of [[86400, "day"], [3600, "hour"], [60, "minute"], [1, "second"]] as const) {
    if (left >= size && parts.length < 2) {
      const n = Math.floor(left / size);
      parts.push(`${n} ${name}${n === 1 ? "" : "s"}`);
      left %= size;
    }
  }
  return parts.join(" ") || "0 seconds";
}
