/**
 * Numeric settings read from the environment, each within documented bounds, so that no
 * configuration can hand a timer a delay Node would overflow (it fires those at once) or size a
 * buffer or table without limit. A value outside its bounds stops the process at start, naming the
 * variable.
 */
import envVar from 'env-var';

/** The longest delay any setting may give a timer: one day (Node's own cap is about 24.8 days). */
export const MAX_SETTING_MS = 86_400_000;

export const MIB = 1024 * 1024;

/** Reads integer variable `name` (default `def`), which must lie in `min..max` inclusive. */
export function boundedInt(
  env: NodeJS.ProcessEnv,
  name: string,
  def: number,
  min: number,
  max: number,
): number {
  const v = envVar.from(env).get(name).default(String(def)).asInt();
  if (v < min || v > max) throw new Error(`${name} must be ${String(min)}..${String(max)}`);
  return v;
}
