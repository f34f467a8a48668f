/** A progress bar on stderr for a terminal; silent when stderr is a pipe or a file (the summary says it all there). */
export interface Progress {
  /** `done` of `total` so far. */
  update(done: number, total: number, detail?: string): void;
  /** Clears the bar, leaving the line for the summary. */
  end(): void;
}

const WIDTH = 30;

export function progressBar(label: string, stream: NodeJS.WriteStream = process.stderr): Progress {
  if (!stream.isTTY) return { update: () => undefined, end: () => undefined };
  let drawn = false;
  return {
    update(done, total, detail) {
      const filled = total > 0 ? Math.round((Math.min(done, total) / total) * WIDTH) : WIDTH;
      stream.write(`\r${label} [${'#'.repeat(filled)}${'.'.repeat(WIDTH - filled)}] ${done}/${total}${detail ? ` ${detail}` : ''}\x1b[K`);
      drawn = true;
    },
    end() {
      if (drawn) stream.write('\r\x1b[K');
    },
  };
}
