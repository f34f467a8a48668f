/** Option values a user types: durations and counts, each refused with one clear line. */
import { CliError, EXIT } from './stage';

const UNIT_MS = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/** `90s`, `15m`, `24h`, `7d` → milliseconds. */
export function parseDuration(option: string, text: string): number {
  const match = /^(\d+)([smhd])$/.exec(text.trim());
  if (!match || Number(match[1]) === 0) throw new CliError(`${option} takes a duration like 90s, 15m, 24h or 7d (got "${text}")`, EXIT.usage);
  return Number(match[1]) * UNIT_MS[match[2] as keyof typeof UNIT_MS];
}

/** A number the option requires, within [min, max]. */
export function parseNumber(option: string, text: string, min: number, max = Number.POSITIVE_INFINITY): number {
  const value = Number(text);
  if (text.trim() === '' || !Number.isFinite(value) || value < min || value > max) {
    throw new CliError(`${option} takes a number ${Number.isFinite(max) ? `from ${min} to ${max}` : `of at least ${min}`} (got "${text}")`, EXIT.usage);
  }
  return value;
}
