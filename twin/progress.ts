import { fmt } from './report';
import type { Progress } from './world';

/** A one-line progress bar on stderr (only when it is a terminal; a plain line every few seconds otherwise). */
export function progressBar(label: string, stream: NodeJS.WriteStream = process.stderr) {
  const started = Date.now();
  let lastPlain = 0;
  let last: Progress | undefined;
  return {
    update(p: Progress) {
      last = p;
      const width = 30;
      const done = p.total > 0 ? p.settled / p.total : 0;
      const bar = '█'.repeat(Math.round(done * width)).padEnd(width, '░');
      const line = `${label} ${bar} ${p.settled}/${p.total} done · ${Math.round(p.running)} running · virtual ${fmt(p.virtualSeconds)} · wall ${((Date.now() - started) / 1000).toFixed(1)} s`;
      if (stream.isTTY) stream.write(`\r${line}\x1b[K`);
      else if (Date.now() - lastPlain > 5000 || lastPlain === 0) {
        lastPlain = Date.now();
        stream.write(`${line}\n`);
      }
    },
    finish() {
      if (stream.isTTY) stream.write('\n');
      else if (last) {
        lastPlain = 0;
        this.update(last);
      }
    },
  };
}
