import { Readable } from 'node:stream';
import { createJsonLogger } from '../../task-image/src/log';
import { defaultProcessor } from '../../task-image/src/processors/default-processor';
import { JsonSyntaxChecker } from '../../task-image/src/processors/json-syntax';
import { CsvChecker, JsonLinesChecker, MAX_LISTED_MALFORMED, structureCheckerFor, type StructureChecker } from '../../task-image/src/processors/structure';

function checkJson(text: string, splitAt?: number): boolean {
  const checker = new JsonSyntaxChecker();
  const bytes = Buffer.from(text);
  if (splitAt === undefined) checker.write(bytes);
  else {
    checker.write(bytes.subarray(0, splitAt));
    checker.write(bytes.subarray(splitAt));
  }
  return checker.end() === undefined;
}

function parsesNatively(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

const JSON_SAMPLES = [
  '0',
  '-0',
  '12',
  '-12.5e+3',
  '1E2',
  '1e-2',
  '0.5',
  '"a"',
  '"\\u00e9\\n\\"\\\\\\/"',
  'true',
  'false',
  'null',
  '[]',
  '{}',
  ' [ 1 , [ ] , { } ] ',
  '{"a":{"b":[null,true,false,"x"]}}',
  '"héllo ✓"',
  '[1e5]',
  '{"a":-0.0}',
  // invalid
  '',
  '   ',
  '01',
  '-',
  '1.',
  '.5',
  '1e',
  '1e+',
  '+1',
  '[1,]',
  '[,1]',
  '{"a":1,}',
  '{a:1}',
  "{'a':1}",
  '{"a" 1}',
  '{"a":}',
  '[1 2]',
  '"unterminated',
  '"bad \\x escape"',
  '"\\u12G4"',
  'tru',
  'nulll',
  'True',
  '[1]]',
  '{"a":1}}',
  '[',
  '{',
  '"tab\there"',
  '1 2',
  'NaN',
  'Infinity',
  '[-]',
  '{"a":1 "b":2}',
  '"\u0001"',
];

describe('JsonSyntaxChecker agrees with JSON.parse', () => {
  test.each(JSON_SAMPLES)('%j', (sample) => {
    const expected = parsesNatively(sample);
    expect(checkJson(sample)).toBe(expected);
    // The verdict must not depend on where the stream splits into chunks.
    for (let splitAt = 0; splitAt <= Buffer.byteLength(sample); splitAt++) {
      expect(checkJson(sample, splitAt)).toBe(expected);
    }
  });

  test('reports the line of the first error', () => {
    const checker = new JsonSyntaxChecker();
    checker.write(Buffer.from('{\n"a": 1,\n"b": tru\n}'));
    expect(checker.end()).toEqual({ line: 3, reason: "invalid literal: expected 'true'" });
  });
});

function runChecker(checker: StructureChecker, text: string, chunkSize = 3) {
  const bytes = Buffer.from(text);
  for (let start = 0; start < bytes.length; start += chunkSize) checker.write(bytes.subarray(start, start + chunkSize));
  return checker.end();
}

describe('JsonLinesChecker', () => {
  test('counts every malformed line with its number and skips blank lines', () => {
    const report = runChecker(new JsonLinesChecker(), '{"a":1}\r\n\n{"a":\n  \n[1]\n{"b":2}{"c":3}');
    expect(report).toMatchObject({ records: 4, malformedCount: 2, valid: false });
    expect(report.malformed.map((entry) => entry.line)).toEqual([3, 6]);
  });

  test('caps the listed lines but counts them all', () => {
    const report = runChecker(new JsonLinesChecker(), 'x\n'.repeat(MAX_LISTED_MALFORMED + 5), 1024);
    expect(report.malformedCount).toBe(MAX_LISTED_MALFORMED + 5);
    expect(report.malformed).toHaveLength(MAX_LISTED_MALFORMED);
    expect(report.malformedListTruncated).toBe(true);
  });
});

describe('CsvChecker', () => {
  test('a well-formed file with CRLF, empty fields, quoted commas and no final newline', () => {
    const report = runChecker(new CsvChecker(), 'a,b,c\r\n1,,3\r\n"x,y","",\r\n\r\n4,5,"6"');
    expect(report).toMatchObject({ valid: true, records: 4, fields: 3, malformedCount: 0 });
  });

  test('stray quotes and an unterminated quoted field are reported at the record start line', () => {
    const report = runChecker(new CsvChecker(), 'a,b\n1,x"y\n"q"z,2\n3,4\n5,"open\nnever closed');
    expect(report.malformed).toEqual([
      { line: 2, reason: 'double quote inside an unquoted field' },
      { line: 3, reason: 'unexpected character after a closing quote' },
      { line: 5, reason: 'unterminated quoted field at end of file' },
    ]);
    expect(report.records).toBe(5);
  });
});

test('structureCheckerFor picks by extension, case-insensitively', () => {
  expect(structureCheckerFor('a/b.JSON')?.constructor.name).toBe('JsonDocumentChecker');
  expect(structureCheckerFor('a/b.ndjson')).toBeInstanceOf(JsonLinesChecker);
  expect(structureCheckerFor('a/b.csv')).toBeInstanceOf(CsvChecker);
  expect(structureCheckerFor('a.json/b')).toBeUndefined();
  expect(structureCheckerFor('README')).toBeUndefined();
});

describe('defaultProcessor', () => {
  const run = (key: string, chunks: string[], signal = new AbortController().signal) =>
    defaultProcessor.process({
      body: Readable.from(chunks.map((chunk) => Buffer.from(chunk))),
      bucket: 'b',
      key,
      versionId: undefined,
      contentType: undefined,
      contentLength: undefined,
      signal,
      log: createJsonLogger('unit', () => undefined),
    });

  test('empty object: zero bytes, zero lines, the SHA-256 of nothing', async () => {
    await expect(run('empty.bin', [])).resolves.toEqual({
      bytes: 0,
      lines: 0,
      sha256: 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
    });
  });

  test('lines split across chunks are counted once', async () => {
    const output = await run('x.jsonl', ['{"a"', ':1}\n{"b":2', '}\n\n']);
    expect(output).toMatchObject({ bytes: 17, lines: 3, structure: { records: 2, valid: true } });
  });

  test('an aborted signal stops the processor with its reason', async () => {
    const stop = new AbortController();
    stop.abort(new Error('stop requested'));
    await expect(run('x.txt', ['data'], stop.signal)).rejects.toThrow('stop requested');
  });
});
