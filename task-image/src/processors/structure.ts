import { JsonSyntaxChecker } from './json-syntax';

export type StructuredFormat = 'json' | 'jsonl' | 'csv';

export interface MalformedLine {
  /** 1-based line number in the object (for CSV: the line where the record starts). */
  line: number;
  reason: string;
}

export interface StructureReport {
  format: StructuredFormat;
  valid: boolean;
  /** JSON: top-level values; JSON Lines: non-blank lines; CSV: records, header included. */
  records: number;
  malformedCount: number;
  /** The first MAX_LISTED_MALFORMED malformed lines; all of them are counted in malformedCount. */
  malformed: MalformedLine[];
  malformedListTruncated: boolean;
  /** CSV only: the header's field count, which every record must match. */
  fields?: number;
}

export interface StructureChecker {
  write(chunk: Buffer): void;
  end(): StructureReport;
}

// Bounds the result's size (and memory) for a file where every line is broken.
export const MAX_LISTED_MALFORMED = 1000;

class MalformedList {
  count = 0;
  readonly listed: MalformedLine[] = [];
  add(line: number, reason: string): void {
    this.count++;
    if (this.listed.length < MAX_LISTED_MALFORMED) this.listed.push({ line, reason });
  }
  report(format: StructuredFormat, records: number, extra: Partial<StructureReport> = {}): StructureReport {
    return {
      format,
      valid: this.count === 0,
      records,
      malformedCount: this.count,
      malformed: this.listed,
      malformedListTruncated: this.count > this.listed.length,
      ...extra,
    };
  }
}

/** `.json`: the whole object is one JSON value. */
export class JsonDocumentChecker implements StructureChecker {
  private readonly checker = new JsonSyntaxChecker();
  write(chunk: Buffer): void {
    this.checker.write(chunk);
  }
  end(): StructureReport {
    const malformed = new MalformedList();
    const error = this.checker.end();
    if (error) malformed.add(error.line, error.reason);
    return malformed.report('json', error ? 0 : 1);
  }
}

/** `.jsonl` / `.ndjson`: one JSON value per line; blank lines are skipped, a bad line is counted and reading goes on. */
export class JsonLinesChecker implements StructureChecker {
  private current = new JsonSyntaxChecker();
  private line = 1;
  private records = 0;
  private readonly malformed = new MalformedList();

  write(chunk: Buffer): void {
    let start = 0;
    for (;;) {
      const newline = chunk.indexOf(0x0a, start);
      if (newline === -1) {
        this.current.write(chunk, start, chunk.length);
        return;
      }
      this.current.write(chunk, start, newline);
      this.finishLine();
      start = newline + 1;
    }
  }

  end(): StructureReport {
    this.finishLine();
    return this.malformed.report('jsonl', this.records);
  }

  private finishLine(): void {
    if (!this.current.isBlank) {
      this.records++;
      const error = this.current.end();
      if (error) this.malformed.add(this.line, error.reason);
    }
    this.line++;
    this.current = new JsonSyntaxChecker();
  }
}

const enum CsvState {
  RecordStart,
  FieldStart,
  Unquoted,
  Quoted,
  QuoteInQuoted,
  SkipToLineEnd,
}

/**
 * `.csv` (RFC 4180, comma-separated): the first record is the header; every record must have as
 * many fields. Quoted fields may span lines. A malformed record is counted and reading resumes at
 * the next line.
 */
export class CsvChecker implements StructureChecker {
  private state = CsvState.RecordStart;
  private line = 1;
  private recordLine = 1;
  private fieldsInRecord = 0;
  private headerFields: number | undefined;
  private records = 0;
  private readonly malformed = new MalformedList();

  write(chunk: Buffer): void {
    for (let index = 0; index < chunk.length; index++) {
      const byte = chunk[index];
      this.step(byte);
      if (byte === 0x0a) this.line++;
    }
  }

  end(): StructureReport {
    if (this.state === CsvState.Quoted) {
      this.malformed.add(this.recordLine, 'unterminated quoted field at end of file');
      this.records++;
    } else if (this.state !== CsvState.RecordStart && this.state !== CsvState.SkipToLineEnd) {
      if (this.state === CsvState.FieldStart) this.fieldsInRecord++; // "a,<EOF>": the last field is empty
      this.endRecord();
    }
    return this.malformed.report('csv', this.records, { fields: this.headerFields ?? 0 });
  }

  private step(byte: number): void {
    // CR of a CRLF line end: meaningless outside quotes.
    if (byte === 0x0d && this.state !== CsvState.Quoted) return;
    switch (this.state) {
      case CsvState.RecordStart:
        if (byte === 0x0a) return; // blank lines are not records
        this.recordLine = this.line;
        this.fieldsInRecord = 0;
        this.state = CsvState.FieldStart;
        this.step(byte);
        return;
      case CsvState.FieldStart:
        this.fieldsInRecord++;
        if (byte === 0x22) this.state = CsvState.Quoted;
        else if (byte === 0x0a) this.endRecord();
        else if (byte !== 0x2c) this.state = CsvState.Unquoted; // a comma: empty field, the next starts
        return;
      case CsvState.Unquoted:
        if (byte === 0x2c) this.state = CsvState.FieldStart;
        else if (byte === 0x0a) this.endRecord();
        else if (byte === 0x22) this.recordError('double quote inside an unquoted field');
        return;
      case CsvState.Quoted:
        if (byte === 0x22) this.state = CsvState.QuoteInQuoted;
        return;
      case CsvState.QuoteInQuoted:
        if (byte === 0x22)
          this.state = CsvState.Quoted; // "" is an escaped quote
        else if (byte === 0x2c) this.state = CsvState.FieldStart;
        else if (byte === 0x0a) this.endRecord();
        else this.recordError('unexpected character after a closing quote');
        return;
      case CsvState.SkipToLineEnd:
        if (byte === 0x0a) this.state = CsvState.RecordStart;
        return;
    }
  }

  private recordError(reason: string): void {
    this.records++;
    this.malformed.add(this.recordLine, reason);
    this.state = CsvState.SkipToLineEnd;
  }

  private endRecord(): void {
    this.records++;
    if (this.headerFields === undefined) {
      this.headerFields = this.fieldsInRecord;
    } else if (this.fieldsInRecord !== this.headerFields) {
      this.malformed.add(this.recordLine, `expected ${this.headerFields} fields (as in the header), found ${this.fieldsInRecord}`);
    }
    this.state = CsvState.RecordStart;
  }
}

/** Picks the structural check by file extension (case-insensitive); undefined for other files. */
export function structureCheckerFor(key: string): StructureChecker | undefined {
  const extension = /\.([^./]+)$/.exec(key)?.[1]?.toLowerCase();
  switch (extension) {
    case 'json':
      return new JsonDocumentChecker();
    case 'jsonl':
    case 'ndjson':
      return new JsonLinesChecker();
    case 'csv':
      return new CsvChecker();
    default:
      return undefined;
  }
}
