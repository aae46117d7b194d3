// Worst-case work of a policy regular expression. cel-js runs `matches` on the engine's backtracking
// RegExp, where `.*.*x` takes 16 s on a 4 KiB string (measured), so patterns must be literals and are
// accepted only in a subset whose backtracking we can bound when the policy is written:
//   - refused: backreferences, lookaround, and repetition of a group that itself repeats or alternates
//     ((a+)+, (a|b)*), the classic exponential cases;
//   - a sequence multiplies the choices of its parts and an alternation adds them;
//   - a repetition {m,n} offers n+1 choices (unbounded = 4096, the longest input string), except when
//     the next element cannot start with a character the repeated one matches (`[a-z]+-`, `[0-9]+$`):
//     then every shorter count fails at once, so it only adds a linear scan. This keeps the common
//     `^[a-z]+-[0-9]+$` cheap while `^.*.*x` stays refused;
//   - a repetition that ends the whole pattern succeeds on its first try;
//   - an unanchored pattern is retried at each of 4097 start positions.
// Patterns use JavaScript syntax without flags, because that is what cel-js runs.
import { INPUT_BOUNDS } from "./policy-env.ts";

const N = INPUT_BOUNDS.stringBytes;
const CAP = 1e15;
const add = (a: number, b: number) => Math.min(CAP, a + b);
const mul = (a: number, b: number) => Math.min(CAP, a * b);

/** ASCII bitmap plus "may contain non-ASCII" (any two such sets are assumed to intersect). */
class CharSet {
  readonly bits = new Uint8Array(128);
  nonAscii = false;
  add(lo: number, hi = lo): this {
    for (let c = lo; c <= Math.min(hi, 127); c++) this.bits[c] = 1;
    if (hi > 127) this.nonAscii = true;
    return this;
  }
  union(o: CharSet): this {
    for (let c = 0; c < 128; c++) if (o.bits[c]) this.bits[c] = 1;
    this.nonAscii ||= o.nonAscii;
    return this;
  }
  complement(): CharSet {
    const r = new CharSet();
    for (let c = 0; c < 128; c++) if (!this.bits[c]) r.bits[c] = 1;
    r.nonAscii = true;
    return r;
  }
  intersects(o: CharSet): boolean {
    if (this.nonAscii && o.nonAscii) return true;
    for (let c = 0; c < 128; c++) if (this.bits[c] && o.bits[c]) return true;
    return false;
  }
}

const cc = (s: string) => s.charCodeAt(0);
const DIGITS = new CharSet().add(cc("0"), cc("9"));
const WORD = new CharSet().add(cc("a"), cc("z")).add(cc("A"), cc("Z")).union(DIGITS).add(cc("_"));
const SPACE = new CharSet().add(9, 13).add(32).add(160, 0xffff);
const DOT = new CharSet().add(0, 9).add(11, 12).add(14, 0xffff);
const ESCAPE_CLASSES: Record<string, CharSet> = {
  d: DIGITS,
  D: DIGITS.complement(),
  w: WORD,
  W: WORD.complement(),
  s: SPACE,
  S: SPACE.complement(),
};
const CONTROL_ESCAPES: Record<string, number> = { t: 9, n: 10, v: 11, f: 12, r: 13, "0": 0 };

interface Rx {
  work: number;
  repeats: boolean;
  alternates: boolean;
  /** Set for single-character atoms (a literal, ., an escape, a class). */
  chars: CharSet | null;
  /** `$`: nothing but the end of input can follow. */
  end: boolean;
  /** For a group with one branch: its elements, spliced into the enclosing sequence when unrepeated. */
  items?: Item[];
}

interface Item {
  atom: Rx;
  q: Quant | null;
}

interface Quant {
  min: number;
  max: number;
}

/** Worst-case steps of `pattern` on a 4 KiB input; throws Error with the reason when it is refused. */
export function regexWork(pattern: string): number {
  try {
    new RegExp(pattern);
  } catch (e) {
    throw new Error(`invalid regular expression (JavaScript syntax): ${e instanceof Error ? e.message : e}`);
  }
  const s = new Scanner(pattern);
  const rx = s.alternation(true);
  return mul(rx.work, s.anchored ? 1 : N + 1);
}

class Scanner {
  i = 0;
  anchored = false;
  constructor(readonly s: string) {}

  alternation(top = false): Rx {
    const starts = [this.i];
    const branches = [this.sequence(top)];
    while (this.s[this.i] === "|") {
      this.i++;
      starts.push(this.i);
      branches.push(this.sequence(top));
    }
    if (top) this.anchored = starts.every((p) => this.s[p] === "^");
    if (branches.length === 1 && !top) return branches[0]!;
    return {
      work: branches.reduce((w, b) => add(w, b.work), 0),
      repeats: branches.some((b) => b.repeats),
      alternates: branches.length > 1 || branches.some((b) => b.alternates),
      chars: null,
      end: false,
    };
  }

  sequence(top: boolean): Rx {
    const items: Item[] = [];
    while (this.i < this.s.length && this.s[this.i] !== "|" && this.s[this.i] !== ")") {
      const atom = this.atom();
      const q = this.quantifier();
      // "^(?<team>[a-z]+)-[0-9]+$" is judged like "^[a-z]+-[0-9]+$": an unrepeated group is just grouping.
      if (!q && atom.items) items.push(...atom.items);
      else items.push({ atom, q });
    }
    let choices = 1;
    let scan = 0;
    const rx: Rx = { work: 1, repeats: false, alternates: false, chars: null, end: false };
    items.forEach(({ atom, q }, k) => {
      rx.alternates ||= atom.alternates;
      if (!q) {
        choices = mul(choices, atom.work);
        rx.repeats ||= atom.repeats;
        return;
      }
      if (atom.repeats || atom.alternates) {
        throw new Error(
          "regular expression repeats a group that itself repeats or alternates, e.g. (a+)+ or (a|b)*, " +
            "which can take exponential time; use a character class such as [ab]+ instead",
        );
      }
      rx.repeats = true;
      const next = items[k + 1];
      if (!next) {
        // Last in the whole pattern: the first count tried succeeds. Last in a group: unknown follower.
        if (!top) choices = mul(choices, q.max + 1);
        return;
      }
      const decided =
        next.atom.end ||
        (atom.chars !== null &&
          next.atom.chars !== null &&
          (next.q === null || next.q.min >= 1) &&
          !atom.chars.intersects(next.atom.chars));
      if (decided) scan = add(scan, q.max + 1);
      else choices = mul(choices, q.max + 1);
    });
    rx.work = mul(choices, Math.max(1, scan));
    rx.items = items;
    return rx;
  }

  quantifier(): Quant | null {
    const c = this.s[this.i];
    let q: Quant;
    if (c === "*" || c === "+") q = { min: c === "+" ? 1 : 0, max: N };
    else if (c === "?") q = { min: 0, max: 1 };
    else if (c === "{") {
      const m = /^\{(\d+)(,(\d*))?\}/.exec(this.s.slice(this.i));
      if (!m) return null; // a literal "{"
      const min = Number(m[1]);
      const max = m[2] === undefined ? min : m[3] ? Number(m[3]) : N;
      this.i += m[0].length - 1;
      q = { min, max: Math.min(max, N) };
    } else return null;
    this.i++;
    if (this.s[this.i] === "?") this.i++; // lazy: same choices, other order
    return q;
  }

  atom(): Rx {
    const rx: Rx = { work: 1, repeats: false, alternates: false, chars: null, end: false };
    const c = this.s[this.i]!;
    this.i++;
    switch (c) {
      case "(": {
        if (this.s[this.i] === "?") {
          const next = this.s[this.i + 1];
          const after = this.s[this.i + 2];
          if (next === "=" || next === "!" || (next === "<" && (after === "=" || after === "!"))) {
            throw new Error("lookahead and lookbehind are not supported in policy regular expressions");
          }
          // Newer engines accept inline modifiers such as (?i:…); case folding would break the
          // disjointness reasoning below, so only plain and named groups are allowed.
          if (next !== ":" && next !== "<") {
            throw new Error(
              "only (…), (?:…) and (?<name>…) groups are supported in policy regular expressions",
            );
          }
          this.i = next === "<" ? this.s.indexOf(">", this.i) + 1 : this.i + 2;
        }
        const inner = this.alternation();
        this.i++; // ")": RegExp() accepted the pattern, so it is there
        return inner;
      }
      case "[":
        return { ...rx, chars: this.charClass() };
      case "\\": {
        const e = this.s[this.i] ?? "";
        if (/[1-9]/.test(e) || (e === "k" && this.s[this.i + 1] === "<")) {
          throw new Error("backreferences are not supported in policy regular expressions");
        }
        if (e === "b" || e === "B") {
          this.i++;
          return rx; // zero-width
        }
        return { ...rx, chars: this.escape() };
      }
      case "^":
        return rx;
      case "$":
        return { ...rx, end: true };
      case ".":
        return { ...rx, chars: DOT };
      default:
        return { ...rx, chars: new CharSet().add(c.charCodeAt(0)) };
    }
  }

  /** After a backslash: the set the escape matches; consumes it. */
  escape(): CharSet {
    const e = this.s[this.i++] ?? "";
    const cls = ESCAPE_CLASSES[e];
    if (cls) return cls;
    const ctl = CONTROL_ESCAPES[e];
    if (ctl !== undefined) return new CharSet().add(ctl);
    const hex = e === "x" ? 2 : e === "u" ? 4 : 0;
    if (hex && /^[0-9a-fA-F]+$/.test(this.s.slice(this.i, this.i + hex))) {
      const code = Number.parseInt(this.s.slice(this.i, this.i + hex), 16);
      this.i += hex;
      return new CharSet().add(code);
    }
    if (e === "c" && /[a-zA-Z]/.test(this.s[this.i] ?? ""))
      return new CharSet().add(cc(this.s[this.i++]!) % 32);
    return new CharSet().add(e.charCodeAt(0));
  }

  /** After "[": the class's set; consumes through "]". */
  charClass(): CharSet {
    const negated = this.s[this.i] === "^";
    if (negated) this.i++;
    const set = new CharSet();
    while (this.i < this.s.length && this.s[this.i] !== "]") {
      const lo = this.classAtom();
      if (typeof lo === "number" && this.s[this.i] === "-" && this.s[this.i + 1] !== "]") {
        this.i++;
        const hi = this.classAtom();
        if (typeof hi === "number") set.add(lo, hi);
        else set.add(lo).add(cc("-")).union(hi);
      } else if (typeof lo === "number") set.add(lo);
      else set.union(lo);
    }
    this.i++; // "]"
    return negated ? set.complement() : set;
  }

  classAtom(): number | CharSet {
    const c = this.s[this.i++]!;
    if (c !== "\\") return c.charCodeAt(0);
    if (this.s[this.i] === "b") {
      this.i++;
      return 8; // backspace inside a class
    }
    const set = this.escape();
    // A single-character escape is a code point that can start a range; a class escape is a set.
    const codes: number[] = [];
    for (let k = 0; k < 128 && codes.length < 2; k++) if (set.bits[k]) codes.push(k);
    return codes.length === 1 && !set.nonAscii ? codes[0]! : set;
  }
}
