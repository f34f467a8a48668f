/**
 * A streaming JSON syntax checker over bytes: it validates without building values, so its memory
 * is the nesting depth, whatever the document's size. Strings are checked for JSON escapes and
 * control characters; UTF-8 validity is not checked.
 */

const enum State {
  Value,
  ArrayValueOrEnd,
  ObjectKeyOrEnd,
  ObjectKey,
  Colon,
  AfterValue,
  String,
  StringEscape,
  StringUnicode,
  NumberMinus,
  NumberZero,
  NumberInteger,
  NumberFractionStart,
  NumberFraction,
  NumberExponentStart,
  NumberExponentSign,
  NumberExponent,
  Literal,
  Done,
  Error,
}

const OPEN_OBJECT = 0x7b;
const OPEN_ARRAY = 0x5b;
const MAX_DEPTH = 10_000;
const LITERALS: Record<number, Uint8Array> = {
  0x74: Buffer.from('true'),
  0x66: Buffer.from('false'),
  0x6e: Buffer.from('null'),
};

const isWhitespace = (byte: number) => byte === 0x20 || byte === 0x0a || byte === 0x0d || byte === 0x09;
const isDigit = (byte: number) => byte >= 0x30 && byte <= 0x39;
const isHex = (byte: number) => isDigit(byte) || (byte >= 0x61 && byte <= 0x66) || (byte >= 0x41 && byte <= 0x46);

export class JsonSyntaxChecker {
  private state = State.Value;
  private readonly stack: number[] = [];
  private stringIsKey = false;
  private unicodeDigits = 0;
  private literal: Uint8Array = LITERALS[0x74];
  private literalIndex = 0;
  private sawContent = false;
  /** 1-based line of the byte being read: a document's error is reported on its line. */
  private line = 1;
  private failure: { line: number; reason: string } | undefined;

  /** True until a byte other than whitespace arrives (a blank JSON Lines line). */
  get isBlank(): boolean {
    return !this.sawContent;
  }

  get error(): { line: number; reason: string } | undefined {
    return this.failure;
  }

  write(chunk: Uint8Array, start = 0, end = chunk.length): void {
    for (let index = start; index < end && this.state !== State.Error; index++) {
      const byte = chunk[index];
      this.step(byte);
      if (byte === 0x0a) this.line++;
    }
  }

  /** Ends the input; returns the first error, or undefined when the text is one valid JSON value. */
  end(): { line: number; reason: string } | undefined {
    if (this.state === State.Error) return this.failure;
    if (this.isNumberEnd() && this.stack.length === 0) return undefined;
    if (this.state === State.Done) return undefined;
    this.fail(this.sawContent ? 'unexpected end of input' : 'no JSON value');
    return this.failure;
  }

  private isNumberEnd(): boolean {
    return this.state === State.NumberZero || this.state === State.NumberInteger || this.state === State.NumberFraction || this.state === State.NumberExponent;
  }

  private fail(reason: string): void {
    this.state = State.Error;
    this.failure = { line: this.line, reason };
  }

  private describe(byte: number): string {
    return byte >= 0x20 && byte < 0x7f ? `'${String.fromCharCode(byte)}'` : `byte 0x${byte.toString(16).padStart(2, '0')}`;
  }

  private valueDone(): void {
    this.state = this.stack.length === 0 ? State.Done : State.AfterValue;
  }

  /** Reads one byte in the current state: the state's handler decides what it means. */
  private step(byte: number): void {
    if (!this.sawContent && !isWhitespace(byte)) this.sawContent = true;
    switch (this.state) {
      case State.Value:
      case State.ArrayValueOrEnd:
        this.inValue(byte);
        return;
      case State.ObjectKeyOrEnd:
      case State.ObjectKey:
        this.inObjectKey(byte);
        return;
      case State.Colon:
        this.inColon(byte);
        return;
      case State.AfterValue:
        this.afterValue(byte);
        return;
      case State.String:
        this.inString(byte);
        return;
      case State.StringEscape:
        this.inEscape(byte);
        return;
      case State.StringUnicode:
        this.inUnicodeEscape(byte);
        return;
      case State.NumberMinus:
      case State.NumberZero:
      case State.NumberInteger:
      case State.NumberFractionStart:
      case State.NumberFraction:
      case State.NumberExponentStart:
      case State.NumberExponentSign:
      case State.NumberExponent:
        this.inNumber(byte);
        return;
      case State.Literal:
        this.inLiteral(byte);
        return;
      case State.Done:
        if (!isWhitespace(byte)) this.fail(`unexpected ${this.describe(byte)} after the JSON value`);
        return;
      case State.Error:
        return;
    }
  }

  /** Where a value may start; right after '[' a ']' may close the array instead. */
  private inValue(byte: number): void {
    if (isWhitespace(byte)) return;
    if (byte === 0x5d && this.state === State.ArrayValueOrEnd) {
      this.stack.pop();
      this.valueDone();
      return;
    }
    this.startValue(byte);
  }

  /** Where a property name must start; right after '{' a '}' may close the object instead. */
  private inObjectKey(byte: number): void {
    if (isWhitespace(byte)) return;
    if (byte === 0x22) {
      this.stringIsKey = true;
      this.state = State.String;
    } else if (byte === 0x7d && this.state === State.ObjectKeyOrEnd) {
      this.stack.pop();
      this.valueDone();
    } else {
      this.fail(`expected a property name in double quotes, found ${this.describe(byte)}`);
    }
  }

  private inColon(byte: number): void {
    if (isWhitespace(byte)) return;
    if (byte === 0x3a) this.state = State.Value;
    else this.fail(`expected ':' after a property name, found ${this.describe(byte)}`);
  }

  /** Inside a string: a closing quote ends a key (a ':' follows) or a value. */
  private inString(byte: number): void {
    if (byte === 0x22) {
      if (this.stringIsKey) {
        this.stringIsKey = false;
        this.state = State.Colon;
      } else {
        this.valueDone();
      }
    } else if (byte === 0x5c) {
      this.state = State.StringEscape;
    } else if (byte < 0x20) {
      this.fail(`unescaped control character ${this.describe(byte)} in a string`);
    }
  }

  /** The byte after a backslash. */
  private inEscape(byte: number): void {
    if (byte === 0x75) {
      this.unicodeDigits = 0;
      this.state = State.StringUnicode;
    } else if ('"\\/bfnrt'.includes(String.fromCharCode(byte))) {
      this.state = State.String;
    } else {
      this.fail(`invalid escape \\${String.fromCharCode(byte)} in a string`);
    }
  }

  /** The four hex digits of a \u escape. */
  private inUnicodeEscape(byte: number): void {
    if (!isHex(byte)) {
      this.fail(`invalid \\u escape: ${this.describe(byte)} is not a hex digit`);
    } else if (++this.unicodeDigits === 4) {
      this.state = State.String;
    }
  }

  /** A number's grammar: -? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?, one state per position. */
  private inNumber(byte: number): void {
    switch (this.state) {
      case State.NumberMinus:
        if (byte === 0x30) this.state = State.NumberZero;
        else if (isDigit(byte)) this.state = State.NumberInteger;
        else this.fail(`expected a digit after '-', found ${this.describe(byte)}`);
        return;
      case State.NumberZero:
      case State.NumberInteger:
        if (isDigit(byte) && this.state === State.NumberInteger) return;
        if (isDigit(byte)) this.fail('leading zero in a number');
        else if (byte === 0x2e) this.state = State.NumberFractionStart;
        else if (byte === 0x65 || byte === 0x45) this.state = State.NumberExponentStart;
        else this.numberDone(byte);
        return;
      case State.NumberFractionStart:
        if (isDigit(byte)) this.state = State.NumberFraction;
        else this.fail(`expected a digit after '.', found ${this.describe(byte)}`);
        return;
      case State.NumberFraction:
        if (isDigit(byte)) return;
        if (byte === 0x65 || byte === 0x45) this.state = State.NumberExponentStart;
        else this.numberDone(byte);
        return;
      case State.NumberExponentStart:
        if (byte === 0x2b || byte === 0x2d) this.state = State.NumberExponentSign;
        else if (isDigit(byte)) this.state = State.NumberExponent;
        else this.fail(`expected a digit in the exponent, found ${this.describe(byte)}`);
        return;
      case State.NumberExponentSign:
        if (isDigit(byte)) this.state = State.NumberExponent;
        else this.fail(`expected a digit in the exponent, found ${this.describe(byte)}`);
        return;
      case State.NumberExponent:
        if (!isDigit(byte)) this.numberDone(byte);
        return;
    }
  }

  /** The rest of true, false or null, byte by byte. */
  private inLiteral(byte: number): void {
    if (byte !== this.literal[this.literalIndex]) {
      this.fail(`invalid literal: expected '${Buffer.from(this.literal).toString()}'`);
    } else if (++this.literalIndex === this.literal.length) {
      this.valueDone();
    }
  }

  private startValue(byte: number): void {
    if (byte === OPEN_OBJECT || byte === OPEN_ARRAY) {
      if (this.stack.length >= MAX_DEPTH) {
        this.fail(`nesting deeper than ${MAX_DEPTH}`);
        return;
      }
      this.stack.push(byte);
      this.state = byte === OPEN_OBJECT ? State.ObjectKeyOrEnd : State.ArrayValueOrEnd;
    } else if (byte === 0x22) {
      this.stringIsKey = false;
      this.state = State.String;
    } else if (byte === 0x2d) {
      this.state = State.NumberMinus;
    } else if (byte === 0x30) {
      this.state = State.NumberZero;
    } else if (isDigit(byte)) {
      this.state = State.NumberInteger;
    } else if (LITERALS[byte]) {
      this.literal = LITERALS[byte];
      this.literalIndex = 1;
      this.state = State.Literal;
    } else {
      this.fail(`unexpected ${this.describe(byte)} where a value was expected`);
    }
  }

  /** A number ends at the first byte that cannot continue it; that byte is then read as what follows. */
  private numberDone(byte: number): void {
    this.valueDone();
    this.step(byte);
  }

  private afterValue(byte: number): void {
    if (isWhitespace(byte)) return;
    const container = this.stack[this.stack.length - 1];
    if (byte === 0x2c) {
      this.state = container === OPEN_OBJECT ? State.ObjectKey : State.Value;
    } else if (byte === 0x7d && container === OPEN_OBJECT) {
      this.stack.pop();
      this.valueDone();
    } else if (byte === 0x5d && container === OPEN_ARRAY) {
      this.stack.pop();
      this.valueDone();
    } else {
      this.fail(`expected ',' or '${container === OPEN_OBJECT ? '}' : ']'}', found ${this.describe(byte)}`);
    }
  }
}
