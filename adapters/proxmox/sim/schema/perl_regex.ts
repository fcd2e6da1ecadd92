/**
 * PVE prints its patterns Perl-stringified: `(?^:…)` is a group with default flags and
 * `(?^i:…)` one that ignores case. JS (V8 ≥ 12.5) has inline modifier groups `(?i:…)`, so
 * both translate one-to-one. Perl validation matches the whole value, hence the anchors.
 */
const cache = new Map<string, RegExp>();

export function perlPatternToRegExp(pattern: string): RegExp {
  let regex = cache.get(pattern);
  if (regex === undefined) {
    const body = pattern.replaceAll("(?^i:", "(?i:").replaceAll("(?^:", "(?:");
    regex = new RegExp(`^(?:${body})$`);
    cache.set(pattern, regex);
  }
  return regex;
}
