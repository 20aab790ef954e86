// The password rules the host checks (internal/policy), mirrored so that the
// popup can say at once, while the user types, which rule a new password
// breaks. The host checks again before anything is sent; keep this in step
// with policy.Check and Rules.Violations (same rule names, same order, same
// character classes).

/** policy.MaxBytes: every password, whatever the back-end. */
export const MAX_BYTES = 4096;

const encoder = new TextEncoder();
const LETTER = /\p{L}/u;
const UPPER = /\p{Lu}/u;
const LOWER = /\p{Ll}/u;

/**
 * Every rule `next` breaks, as [{rule, ...params}], in policy's order: the
 * universal rules (empty, too_long, control_characters), same_as_current
 * when current is given, then the back-end's rules (PROTOCOL.md hello
 * `rules`; null or absent: none): too_short, too_long, bad_character,
 * needs_upper, needs_lower, needs_digit, needs_special. Unlike the host,
 * which stops at the first, all are listed.
 */
export function violations(next, { current = "", rules = null } = {}) {
  const out = [];
  const bytes = encoder.encode(next).length;
  if (!next) {
    return [{ rule: "empty" }];
  }
  if (bytes > MAX_BYTES) {
    out.push({ rule: "too_long", maxBytes: MAX_BYTES });
  }
  if (/[\0\r\n]/.test(next)) {
    out.push({ rule: "control_characters" });
  }
  if (current && next === current) {
    out.push({ rule: "same_as_current" });
  }
  return out.length ? out : ruleViolations(next, rules);
}

/** The back-end's rules that password breaks (policy.Rules.Violations). */
export function ruleViolations(password, rules) {
  if (!rules || typeof rules !== "object") {
    return [];
  }
  const out = [];
  const chars = [...password]; // code points, as Go's RuneCount
  const specials = typeof rules.specials === "string" ? rules.specials : "";
  const forbidden = typeof rules.forbidden === "string" ? rules.forbidden : "";
  if (rules.minLength > 0 && chars.length < rules.minLength) {
    out.push({ rule: "too_short", minLength: rules.minLength });
  }
  if (rules.maxLength > 0 && chars.length > rules.maxLength) {
    out.push({ rule: "too_long", maxLength: rules.maxLength });
  } else if (rules.maxBytes > 0 && encoder.encode(password).length > rules.maxBytes) {
    out.push({ rule: "too_long", maxBytes: rules.maxBytes });
  }
  let upper = false;
  let lower = false;
  let digit = false;
  let special = false;
  let bad = false;
  for (const c of chars) {
    const ascii = c.codePointAt(0) < 0x80;
    if (forbidden.includes(c)) {
      bad = true;
    } else if (c >= "0" && c <= "9") {
      digit = true;
    } else if (specials && ascii && LETTER.test(c)) {
      upper ||= UPPER.test(c);
      lower ||= LOWER.test(c);
    } else if (specials) {
      if (specials.includes(c)) {
        special = true;
      } else {
        bad = true;
      }
    } else if (LETTER.test(c)) {
      upper ||= UPPER.test(c);
      lower ||= LOWER.test(c);
    } else if (!/\p{Nd}/u.test(c)) {
      special = true; // a non-ASCII digit is neither a 0-9 digit nor special
    }
  }
  if (bad) {
    out.push({ rule: "bad_character", specials, forbidden });
  }
  if (rules.needsUpper && !upper) {
    out.push({ rule: "needs_upper" });
  }
  if (rules.needsLower && !lower) {
    out.push({ rule: "needs_lower" });
  }
  if (rules.needsDigit && !digit) {
    out.push({ rule: "needs_digit" });
  }
  if (rules.needsSpecial && !special) {
    out.push({ rule: "needs_special", specials });
  }
  return out;
}

