export type LogLevel = 'info' | 'warn' | 'error';
export type LogFields = Record<string, unknown>;

export interface Logger {
  info(event: string, fields?: LogFields): void;
  warn(event: string, fields?: LogFields): void;
  error(event: string, fields?: LogFields): void;
}

/**
 * One JSON object per line on stdout, each carrying the job id, so CloudWatch Insights can filter by job; `context`
 * goes on every line too (a packed task's batch and task index).
 */
export function createJsonLogger(
  jobId: string | undefined,
  writeLine: (line: string) => void = (line) => process.stdout.write(`${line}\n`),
  context: LogFields = {},
): Logger {
  const emit = (level: LogLevel, event: string, fields: LogFields = {}) => {
    const record: LogFields = { time: new Date().toISOString(), level, event, jobId: jobId ?? null, ...context };
    for (const [name, value] of Object.entries(fields)) {
      record[name] = value instanceof Error ? { name: value.name, message: value.message } : value;
    }
    writeLine(JSON.stringify(record));
  };
  return {
    info: (event, fields) => emit('info', event, fields),
    warn: (event, fields) => emit('warn', event, fields),
    error: (event, fields) => emit('error', event, fields),
  };
}
